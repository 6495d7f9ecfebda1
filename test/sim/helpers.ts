/**
 * Spawning the osqueryd stand-in (bin/osqueryd-sim, running dist/) the way a
 * supervisor does: real process, real socket, real files in a short temp dir.
 * Every process started through `SimHarness` is killed and awaited by
 * `cleanup()`, which tests call in afterEach/afterAll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExtensionManagerClient } from '../../src/osquery/client.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';

export { waitFor };

export const SIM_BIN = resolve(fileURLToPath(new URL('../../bin/osqueryd-sim', import.meta.url)));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class SimProcess {
  readonly proc: ChildProcess;
  readonly exited: Promise<Exit>;
  stdout = '';
  stderr = '';
  exit: Exit | undefined;

  constructor(proc: ChildProcess) {
    this.proc = proc;
    proc.stdout?.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((res) =>
      proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        res(this.exit);
      }),
    );
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Wait for a stderr line matching `re` (the glog output a supervisor captures). */
  async waitForStderr(re: RegExp, timeoutMs = 10_000): Promise<void> {
    try {
      await waitFor(() => re.test(this.stderr), timeoutMs, `stderr ${re}`);
    } catch (err) {
      throw new Error(`${(err as Error).message}; exit ${JSON.stringify(this.exit)}; stderr:\n${this.stderr}`);
    }
  }
}

/** Paths for one stand-in under the harness's temp dir. */
export interface SimPaths {
  socket: string;
  pidfile: string;
  database: string;
  loggerPath: string;
  configPath: string;
}

export class SimHarness {
  readonly dir: string;
  private readonly removeDir: () => void;
  private readonly procs: SimProcess[] = [];
  private readonly clients: ExtensionManagerClient[] = [];
  private readonly cleanups: Array<() => Promise<unknown> | unknown> = [];

  constructor() {
    const { dir, cleanup } = shortTempDir('sim');
    this.dir = dir;
    this.removeDir = cleanup;
  }

  paths(name = 'a'): SimPaths {
    return {
      socket: join(this.dir, `${name}.em`),
      pidfile: join(this.dir, `${name}.pid`),
      database: join(this.dir, `${name}.db`),
      loggerPath: join(this.dir, `${name}-logs`),
      configPath: join(this.dir, `${name}.conf`),
    };
  }

  /** The flags every test passes, so nothing touches /var. */
  baseArgs(p: SimPaths): string[] {
    return [
      `--extensions_socket=${p.socket}`,
      `--pidfile=${p.pidfile}`,
      `--database_path=${p.database}`,
      `--logger_path=${p.loggerPath}`,
      `--config_path=${p.configPath}`,
      '--extensions_interval=1',
      '--extensions_timeout=2',
    ];
  }

  spawn(args: string[], env: Record<string, string> = {}): SimProcess {
    const proc = spawn(process.execPath, [SIM_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const sim = new SimProcess(proc);
    this.procs.push(sim);
    return sim;
  }

  /** Spawn with the base flags and wait until the manager answers a ping. */
  async start(
    p: SimPaths,
    extra: string[] = [],
    env: Record<string, string> = {},
  ): Promise<{ sim: SimProcess; client: ExtensionManagerClient }> {
    const sim = this.spawn([...this.baseArgs(p), ...extra], env);
    const client = this.client(p.socket);
    await waitFor(
      async () => {
        if (sim.exit) throw new Error(`osqueryd-sim exited ${JSON.stringify(sim.exit)}:\n${sim.stderr}`);
        return existsSync(p.socket) && (await client.ping(500)).code === 0;
      },
      10_000,
      `osqueryd-sim socket ${p.socket}`,
    );
    return { sim, client };
  }

  client(socket: string, timeoutMs = 5_000): ExtensionManagerClient {
    const c = new ExtensionManagerClient(socket, { timeoutMs });
    this.clients.push(c);
    return c;
  }

  /** Run `fn` at cleanup, before processes are killed (e.g. stop an ExtensionServer). */
  defer(fn: () => Promise<unknown> | unknown): void {
    this.cleanups.push(fn);
  }

  /** Query-log lines (`<database_path>.queries.log`). */
  queryLog(p: SimPaths): Array<{ t: number; source: string; name: string; sql: string }> {
    if (!existsSync(`${p.database}.queries.log`)) return [];
    return readFileSync(`${p.database}.queries.log`, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { t: number; source: string; name: string; sql: string });
  }

  async cleanup(): Promise<void> {
    for (const fn of this.cleanups.splice(0)) await Promise.resolve(fn()).catch(() => undefined);
    for (const c of this.clients.splice(0)) c.close();
    await Promise.all(
      this.procs.splice(0).map(async (s) => {
        if (!s.exit) s.proc.kill('SIGKILL');
        await s.exited;
      }),
    );
    this.removeDir();
  }
}
