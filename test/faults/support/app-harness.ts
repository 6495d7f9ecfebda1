/**
 * The composition root in-process (`LauncherApp`, the real kolide_grpc
 * extension, the shared device client and SQLite file) with the real local
 * device server and real osqueryd stand-in processes, at test speed through
 * the app's runner seams (timings, backoff, per-run environment).
 *
 * It samples every osqueryd pid the app reports (every 10 ms) and reads the
 * run history at stop, so stop() can prove that every process it ever saw is
 * dead; it dumps the app's log tail when asked (on failure).
 */
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { LauncherApp, type LauncherAppOptions } from '../../../src/app/launcher-app.js';
import { configSchema } from '../../../src/config/schema.js';
import { startDevServer, type DevServer } from '../../../src/devserver/index.js';
import type { RegistrationStatus } from '../../../src/runtime/supervisor.js';
import { OSQUERYD_SIM, assertBuilt } from '../../../bench/reliability/paths.js';
import { isAlive, killAll, osquerydProcesses } from '../../../bench/reliability/procfs.js';
import { waitFor } from '../../../bench/reliability/wait.js';
import { FAST } from '../../runtime/harness.js';
import { parseRegistrationId as rid } from '../../../src/registration.js';

type RunnerSeams = NonNullable<LauncherAppOptions['runner']>;

/** The runtime suite's test-speed timings, with a shorter backoff cap so fault recoveries stay quick. */
export const FAST_RUNNER: RunnerSeams = { ...FAST, backoff: { initialMs: 100, maxMs: 1_000, stableAfterMs: 2_000 } };

export interface AppHarnessOptions {
  /** Registration ids; each is also a dev-server tenant with secret `secret-<id>`. */
  registrations: string[];
  /** osquery config the device server serves each tenant (JSON). */
  tenantConfig?: (id: string) => Record<string, unknown>;
  /** Merged over FAST_RUNNER (timings and backoff merged field by field). */
  runner?: Partial<RunnerSeams>;
  /** Top-level config fields (log_buffer, ...). */
  config?: Record<string, unknown>;
  /** Called with the root before the app is constructed (pre-create directories, mounts). */
  prepareRoot?: (root: string) => void;
  /** Called with the device server before the app is constructed (faults from the first call on). */
  beforeApp?: (dev: DevServer) => void;
}

export interface StopReport {
  /** Pids seen during the test that were still alive after the app stopped (they were then killed). */
  leaked: number[];
  /** Files left in the socket directory after the app stopped. */
  socketFiles: string[];
}

export class AppHarness {
  readonly dir: string;
  readonly root: string;
  readonly dev: DevServer;
  readonly app: LauncherApp;
  /** Every osqueryd pid seen in status or history. */
  readonly pids = new Set<number>();
  readonly logs: string[];
  private readonly running: Promise<void>;
  private readonly sampler: NodeJS.Timeout;
  private stopped: Promise<StopReport> | undefined;

  private constructor(dir: string, dev: DevServer, app: LauncherApp, logs: string[]) {
    this.dir = dir;
    this.root = join(dir, 'root');
    this.dev = dev;
    this.app = app;
    this.logs = logs;
    this.running = app.run();
    this.running.catch(() => undefined);
    this.sampler = setInterval(() => this.sample(), 10);
  }

  static async start(o: AppHarnessOptions): Promise<AppHarness> {
    assertBuilt();
    const dir = mkdtempSync(join(tmpdir(), 'rf-'));
    const root = join(dir, 'root');
    const dev = await startDevServer({
      tenants: o.registrations.map((id) => ({
        name: id,
        secrets: [`secret-${id}`],
        ...(o.tenantConfig ? { config: JSON.stringify(o.tenantConfig(id)) } : {}),
      })),
    });
    try {
      o.prepareRoot?.(root);
      o.beforeApp?.(dev);
      const config = configSchema.parse({
        root_directory: root,
        osqueryd_path: OSQUERYD_SIM,
        device_server: { url: dev.url, insecure_transport: true, timeout_ms: 5_000 },
        registrations: o.registrations.map((id) => ({ id, enroll_secret: `secret-${id}` })),
        control: { enabled: false },
        log_buffer: { publish_interval_seconds: 0.1 },
        distributed_forwarding_interval_seconds: 1,
        ...o.config,
      });
      const logs: string[] = [];
      const logger = pino({ level: 'debug' }, { write: (line: string) => void (logs.push(line) > 50_000 && logs.splice(0, 10_000)) });
      const runner: RunnerSeams = {
        ...FAST_RUNNER,
        ...o.runner,
        timings: { ...FAST_RUNNER.timings, ...o.runner?.timings },
        backoff: { ...FAST_RUNNER.backoff, ...o.runner?.backoff },
      };
      const app = new LauncherApp({ config, osquerydPath: OSQUERYD_SIM, logger, signals: false, runner });
      const h = new AppHarness(dir, dev, app, logs);
      await Promise.race([app.whenReady(), h.running.then(() => Promise.reject(new Error('app stopped before it was ready')))]);
      return h;
    } catch (err) {
      await dev.close();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  get socketDir(): string {
    return this.app.runner.socketDirectory!;
  }

  status(id: string): RegistrationStatus {
    return this.app.runner.statusOf(rid(id));
  }

  async waitHealthy(id: string, timeoutMs = 30_000, accept: (s: RegistrationStatus) => boolean = () => true): Promise<RegistrationStatus> {
    return waitFor(
      `${id} healthy`,
      () => {
        const s = this.status(id);
        return s.healthy && s.pid && accept(s) ? s : undefined;
      },
      { timeoutMs, intervalMs: 10, explain: () => `status: ${JSON.stringify(this.status(id))}\n${this.logTail(60)}` },
    );
  }

  /** Live osqueryd processes of this root according to /proc. */
  liveOsqueryds() {
    return osquerydProcesses(this.socketDir);
  }

  /** Files in the socket directory (empty when it is gone). */
  socketFiles(): string[] {
    try {
      return readdirSync(this.socketDir);
    } catch {
      return [];
    }
  }

  /** The last `n` log lines, compacted to time, component, registration, message and error. */
  logTail(n = 120): string {
    const out = this.logs.slice(-n).map((l) => {
      try {
        const r = JSON.parse(l) as Record<string, unknown>;
        return `${String(r.time)} ${String(r.component ?? '')} ${String(r.registration_id ?? '')} ${String(r.msg)}${r.err ? ` err=${String(r.err)}` : ''}`;
      } catch {
        return l.trim();
      }
    });
    return `--- app log tail (${this.root}) ---\n${out.join('\n')}`;
  }

  /**
   * Stop the app (as SIGTERM would), then prove every osqueryd ever seen is
   * dead (any survivor is killed and reported) and report files left in the
   * socket directory. Removes the temp dir unless `keep`. Idempotent.
   */
  stop(options: { keep?: boolean } = {}): Promise<StopReport> {
    this.stopped ??= (async () => {
      const socketDir = this.app.runner.socketDirectory;
      // RELIABILITY_DUMP_LOGS=<file>: keep every app log line for debugging a failure.
      if (process.env.RELIABILITY_DUMP_LOGS) appendFileSync(process.env.RELIABILITY_DUMP_LOGS, this.logs.join(''));
      this.sample();
      this.readHistoryPids();
      clearInterval(this.sampler);
      this.app.stop('test finished');
      await this.running.catch(() => undefined);
      await this.dev.close();
      const onProc = socketDir ? osquerydProcesses(socketDir).map((p) => p.pid) : [];
      for (const p of onProc) this.pids.add(p);
      let leaked: number[] = [];
      try {
        await waitFor('every osqueryd seen to exit', () => [...this.pids].every((p) => !isAlive(p)), { timeoutMs: 5_000, intervalMs: 20 });
      } catch {
        leaked = killAll(this.pids);
      }
      let socketFiles: string[] = [];
      try {
        socketFiles = socketDir ? readdirSync(socketDir) : [];
      } catch {
        socketFiles = [];
      }
      if (!options.keep) rmSync(this.dir, { recursive: true, force: true });
      return { leaked, socketFiles };
    })();
    return this.stopped;
  }

  private sample(): void {
    try {
      for (const s of this.app.runner.status()) if (s.pid) this.pids.add(s.pid);
    } catch {
      // runner stopping
    }
  }

  private readHistoryPids(): void {
    try {
      for (const r of this.app.runner.registrationsList())
        for (const run of this.app.runner.history(r.id, 1_000)) if (run.pid) this.pids.add(run.pid);
    } catch {
      // store closed
    }
  }
}
