/**
 * Shared by the state benchmarks: the real supervisor (LauncherApp, in this
 * process) with `n` registrations — `kolide` (the vendor) and tenants
 * `t01`… — each with its own osqueryd stand-in and kolide_grpc extension,
 * and the local device server (in this process too) they enroll with.
 * Publication is effectively off (3600 s), so buffered logs stay put and no
 * device traffic competes with what is measured. Not a benchmark itself
 * (bench/run skips `*-fixture`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { LauncherApp } from '../src/app/launcher-app.js';
import { configSchema } from '../src/config/schema.js';
import { startDevServer, type DevServer } from '../src/devserver/index.js';
import { silentLogger } from '../src/log/logger.js';
import { ExtensionManagerClient } from '../src/osquery/client.js';
import { instancePaths } from '../src/runtime/instance/paths.js';
import { parseRegistrationId as rid } from '../src/registration.js';

const here = dirname(fileURLToPath(import.meta.url));
export const OSQUERYD_SIM = resolve(here, here.includes('/dist/') ? '../../bin/osqueryd-sim' : '../bin/osqueryd-sim');

export interface StateFixture {
  app: LauncherApp;
  dev: DevServer;
  ids: string[];
  /** Seconds from run() until every instance was healthy. */
  startupSeconds: number;
  /** The instance's osqueryd manager socket and its kolide_grpc extension's socket. */
  sockets(id: string): Promise<{ manager: string; extension: string }>;
  stop(): Promise<void>;
}

export async function startStateFixture(n: number, options: { scheduleIntervalSeconds?: number } = {}): Promise<StateFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'bs-'));
  const ids = ['kolide', ...Array.from({ length: n - 1 }, (_, i) => `t${String(i + 1).padStart(2, '0')}`)];
  const interval = options.scheduleIntervalSeconds ?? 10;
  const config = JSON.stringify({ schedule: { clock: { query: 'select unix_time from time', interval } } });
  const dev = await startDevServer({ tenants: ids.map((id) => ({ name: id, secrets: [`secret-${id}`], config })) });
  const cfg = configSchema.parse({
    root_directory: join(dir, 'root'),
    osqueryd_path: OSQUERYD_SIM,
    device_server: { url: dev.url, insecure_transport: true },
    registrations: ids.map((id) => ({ id, enroll_secret: `secret-${id}` })),
    control: { enabled: false },
    log_buffer: { publish_interval_seconds: 3600 },
    health: { interval_seconds: 10, startup_delay_seconds: 5, failures: 5 },
  });
  const app = new LauncherApp({
    config: cfg,
    osquerydPath: OSQUERYD_SIM,
    logger: silentLogger(),
    signals: false,
    runner: { limits: { cgroup: 'off' }, timings: { callTimeoutMs: 10_000, healthTimeoutMs: 10_000 } },
  });
  const t0 = performance.now();
  const running = app.run();
  running.catch((err: unknown) => console.error('launcher stopped with an error', err));
  await app.whenReady();
  const deadline = Date.now() + 300_000;
  while (!(app.runner.status().length === n && app.runner.status().every((s) => s.healthy && s.pid))) {
    if (Date.now() > deadline)
      throw new Error(
        `instances not healthy within 300 s: ${JSON.stringify(
          app.runner
            .status()
            .filter((s) => !s.healthy)
            .map((s) => [s.id, s.state, s.last_error]),
        )}`,
      );
    await sleep(100);
  }
  const startupSeconds = (performance.now() - t0) / 1000;
  return {
    app,
    dev,
    ids,
    startupSeconds,
    async sockets(id) {
      const s = app.runner.statusOf(rid(id));
      const manager = instancePaths(app.runner.root, rid(id), s.run_id!, app.runner.socketDirectory!).socketPath;
      const client = new ExtensionManagerClient(manager, { timeoutMs: 10_000 });
      try {
        const ext = [...(await client.extensions()).entries()].find(([, info]) => info.name === 'kolide_grpc');
        if (!ext) throw new Error(`no kolide_grpc extension registered with ${id}'s osqueryd`);
        return { manager, extension: `${manager}.${ext[0]}` };
      } finally {
        client.close();
      }
    },
    async stop() {
      app.stop('benchmark done');
      await running.catch(() => undefined);
      await dev.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
