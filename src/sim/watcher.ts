/**
 * osqueryd's ExtensionManagerWatcher (docs/protocol/osquery-extensions.md#watcher): every
 * max(--extensions_interval s, 200 ms) each uuid that owns routes is pinged on
 * a new connection to `<socket>.<uuid>`. The first check of a uuid waits up
 * to --extensions_timeout for the socket to appear and answer; after that a
 * missing socket, a connection error or ping code 1 removes the extension on
 * that same check. When osqueryd stops, the watcher calls shutdown() on every
 * registered extension.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExtensionClient } from '../osquery/client.js';
import { extensionSocketPath } from '../osquery/socket-path.js';
import { extensionHealthy } from './extension-call.js';
import type { FaultController } from './faults.js';
import { glog } from './glog.js';
import type { Registry } from './registry.js';

export const MIN_WATCH_INTERVAL_MS = 200;
const FIRST_CHECK_POLL_MS = 20;

export interface WatcherOptions {
  registry: Registry;
  managerPath: string;
  intervalMs: () => number;
  timeoutMs: () => number;
  faults: FaultController;
}

export class ExtensionWatcher {
  private readonly opts: WatcherOptions;
  private readonly abort = new AbortController();
  private readonly checked = new Set<number>();
  private running: Promise<void> | undefined;

  constructor(opts: WatcherOptions) {
    this.opts = opts;
  }

  start(): void {
    this.running ??= this.loop().catch((err: unknown) => {
      if (!this.abort.signal.aborted) glog.error('watcher.cpp', 90, `Extension watcher failed: ${String(err)}`);
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { signal } = this.abort;
    while (!signal.aborted) {
      await sleep(Math.max(this.opts.intervalMs(), MIN_WATCH_INTERVAL_MS), undefined, { signal });
      if (this.opts.faults.hung) continue;
      const uuids = this.opts.registry.routeUuids();
      for (const uuid of uuids) {
        if (signal.aborted) return;
        const path = extensionSocketPath(this.opts.managerPath, uuid);
        const first = !this.checked.has(uuid);
        this.checked.add(uuid);
        const healthy = first ? await this.firstCheck(path) : await extensionHealthy(path);
        if (!healthy && !signal.aborted && this.opts.registry.remove(uuid)) {
          glog.info('watcher.cpp', 214, `Extension UUID ${uuid} has gone away`);
        }
      }
      for (const uuid of this.checked) if (!uuids.includes(uuid)) this.checked.delete(uuid);
    }
  }

  /** Grace for a new extension: poll every 20 ms, up to --extensions_timeout, for its socket to answer. */
  private async firstCheck(path: string): Promise<boolean> {
    const deadline = Date.now() + this.opts.timeoutMs();
    for (;;) {
      if (existsSync(path) && (await extensionHealthy(path))) return true;
      if (Date.now() >= deadline || this.abort.signal.aborted) return false;
      await sleep(FIRST_CHECK_POLL_MS);
    }
  }
}

/** osqueryd's last act towards extensions: shutdown() on each, in parallel, bounded. */
export async function shutdownExtensions(registry: Registry, managerPath: string, timeoutMs: number): Promise<void> {
  await Promise.all(
    [...registry.extensions().keys()].map(async (uuid) => {
      const client = new ExtensionClient(extensionSocketPath(managerPath, uuid), { timeoutMs });
      try {
        await client.shutdown();
      } catch {
        // The extension may already be gone.
      } finally {
        client.close();
      }
    }),
  );
}
