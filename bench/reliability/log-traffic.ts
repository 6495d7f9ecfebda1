/**
 * Logs with a known count, end to end: the injector calls a run's
 * `kolide_grpc` logger plugin on its extension socket exactly as osqueryd
 * does (`call("logger", "kolide_grpc", {string: …})`), and a log counts as
 * written only when the plugin acknowledged it — the plugin answers after
 * the append committed to the SQLite buffer (src/store/log-append-queue.ts),
 * so every acknowledged marker must reach the device server, whatever
 * happens to the supervisor afterwards. The tracker reads what the device
 * server stored; delivery is at-least-once, so duplicates are counted, not
 * failures.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DevServer } from '../../src/devserver/index.js';
import { ExtensionClient } from '../../src/osquery/client.js';
import { runShortId } from '../../src/runtime/instance/paths.js';
import { pause } from './wait.js';

/** `name` of every injected result line (what the tracker looks for). */
export const INJECTED_NAME = 'reliability_inject';

/** The extension socket of a run (`<socketDir>/<short>.em.<uuid>`), undefined while it does not exist. */
export function extensionSocket(socketDir: string, runId: string): string | undefined {
  const prefix = `${runShortId(runId)}.em.`;
  try {
    const name = readdirSync(socketDir).find((n) => n.startsWith(prefix));
    return name ? join(socketDir, name) : undefined;
  } catch {
    return undefined;
  }
}

export class LogInjector {
  /** Markers the logger plugin acknowledged, per registration. */
  readonly written = new Map<string, Set<string>>();
  /** Calls the plugin answered with a non-zero status (it could not buffer the log). */
  refused = 0;
  /** Calls that got no answer (the run's socket is gone, a timeout): expected around a restart. */
  unreachable = 0;
  lastError: string | undefined;
  private seq = 0;
  private readonly clients = new Map<string, { socket: string; client: ExtensionClient }>();

  /** `padBytes`: extra bytes per line (a `pad` field), for byte-heavy load. */
  constructor(
    private readonly tag: string,
    private readonly padBytes = 0,
  ) {}

  /** Acknowledged logs over all registrations. */
  get total(): number {
    let n = 0;
    for (const s of this.written.values()) n += s.size;
    return n;
  }

  /**
   * Send `count` result logs, one call each, to `registrationId`'s logger
   * plugin on `socket`. Returns how many were acknowledged; stops at the first
   * failure (the run may be ending).
   */
  async inject(registrationId: string, socket: string, count: number): Promise<number> {
    const client = this.client(registrationId, socket);
    const set = this.written.get(registrationId) ?? new Set<string>();
    this.written.set(registrationId, set);
    let acked = 0;
    for (let i = 0; i < count; i++) {
      const marker = `${this.tag}/${registrationId}/${this.seq++}`;
      const line = JSON.stringify({
        name: INJECTED_NAME,
        marker,
        unixTime: Math.floor(Date.now() / 1000),
        action: 'added',
        columns: { marker },
        ...(this.padBytes > 0 ? { pad: 'x'.repeat(this.padBytes) } : {}),
      });
      try {
        const res = await client.call('logger', 'kolide_grpc', { string: line, category: 'event' });
        if (res.status?.code !== 0) {
          this.refused++;
          this.lastError = `status ${res.status?.code}: ${res.status?.message}`;
          return acked;
        }
      } catch (err) {
        this.unreachable++;
        this.lastError = err instanceof Error ? err.message : String(err);
        this.drop(registrationId);
        return acked;
      }
      set.add(marker);
      acked++;
    }
    return acked;
  }

  close(): void {
    for (const id of [...this.clients.keys()]) this.drop(id);
  }

  private client(registrationId: string, socket: string): ExtensionClient {
    const known = this.clients.get(registrationId);
    if (known && known.socket === socket) return known.client;
    this.drop(registrationId);
    const client = new ExtensionClient(socket, { timeoutMs: 10_000 });
    this.clients.set(registrationId, { socket, client });
    return client;
  }

  private drop(registrationId: string): void {
    this.clients.get(registrationId)?.client.close();
    this.clients.delete(registrationId);
  }
}

/** What the device server stored, read incrementally. Tenants are named after registrations. */
export class DeliveryTracker {
  /** Injected markers stored, per tenant. */
  readonly delivered = new Map<string, Set<string>>();
  /** Injected markers stored more than once (at-least-once delivery). */
  duplicates = 0;
  /** Result logs that are not injected ones (the stand-ins' scheduled queries), per tenant. */
  readonly scheduled = new Map<string, number>();
  /** Status logs, per tenant. */
  readonly status = new Map<string, number>();
  private lastId = 0;

  constructor(private readonly dev: DevServer) {}

  poll(): void {
    for (const log of this.dev.logs({ afterId: this.lastId })) {
      this.lastId = log.id;
      if (log.logType !== 0) {
        this.status.set(log.tenant, (this.status.get(log.tenant) ?? 0) + 1);
        continue;
      }
      if (!log.data.includes(INJECTED_NAME)) {
        this.scheduled.set(log.tenant, (this.scheduled.get(log.tenant) ?? 0) + 1);
        continue;
      }
      let marker: unknown;
      try {
        marker = (JSON.parse(log.data) as { marker?: unknown }).marker;
      } catch {
        continue;
      }
      if (typeof marker !== 'string') continue;
      const set = this.delivered.get(log.tenant) ?? new Set<string>();
      this.delivered.set(log.tenant, set);
      if (set.has(marker)) this.duplicates++;
      else set.add(marker);
    }
  }

  /** Acknowledged markers the device server has not stored (after a fresh poll). */
  missing(written: ReadonlyMap<string, ReadonlySet<string>>): string[] {
    this.poll();
    const out: string[] = [];
    for (const [reg, markers] of written) {
      const got = this.delivered.get(reg);
      for (const m of markers) if (!got?.has(m)) out.push(m);
    }
    return out;
  }

  /** Unique injected markers stored. */
  get total(): number {
    let n = 0;
    for (const s of this.delivered.values()) n += s.size;
    return n;
  }
}

export interface InjectionLoopOptions {
  injector: LogInjector;
  /** Registration → its current run's extension socket (undefined: skip it this tick). */
  resolve: () => Promise<Map<string, string | undefined>>;
  /** Logs per registration per tick. */
  perTick: number;
  tickMs: number;
  /** Re-resolve sockets this often, and after any failed injection. Default 1 s. */
  refreshMs?: number;
}

/** A steady, known rate of logs into every registration's logger plugin until stopped. */
export class InjectionLoop {
  ticks = 0;
  private running = false;
  private done: Promise<void> | undefined;

  constructor(private readonly o: InjectionLoopOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.done = this.loop();
  }

  /** Stop after the tick in progress; resolves once no call is in flight. */
  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  private async loop(): Promise<void> {
    const refreshMs = this.o.refreshMs ?? 1_000;
    let sockets = new Map<string, string | undefined>();
    let refreshedAt = 0;
    let stale = true;
    while (this.running) {
      const started = Date.now();
      if (stale || started - refreshedAt >= refreshMs) {
        sockets = await this.o.resolve().catch(() => sockets);
        refreshedAt = started;
        stale = false;
      }
      await Promise.all(
        [...sockets].map(async ([id, socket]) => {
          if (!socket) return;
          if ((await this.o.injector.inject(id, socket, this.o.perTick)) < this.o.perTick) stale = true;
        }),
      );
      this.ticks++;
      await pause(Math.max(0, this.o.tickMs - (Date.now() - started)));
    }
  }
}
