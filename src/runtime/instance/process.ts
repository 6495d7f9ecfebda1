/**
 * One osqueryd child process, in its own process group (Playwright's
 * processLauncher, docs/protocol/device.md#launch): spawned with execa, no shell, output
 * read line by line, terminated by signalling the whole group (osqueryd's
 * watchdog forks a worker, and autoloaded extensions are its children too),
 * SIGTERM first and SIGKILL after a grace period or on request.
 */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { execa, type ResultPromise } from 'execa';
import { LauncherError, errorMessage } from '../../errors.js';
import { guardProcessGroup } from '../../rungroup/exit-guard.js';

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type OutputStream = 'stdout' | 'stderr';

export interface SpawnOsquerydOptions {
  file: string;
  args: readonly string[];
  /** Added to the inherited environment. */
  env?: Record<string, string>;
  cwd?: string;
  onLine?: (stream: OutputStream, line: string) => void;
}

export function describeExit(exit: ProcessExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/** Send `signal` to process group `pgid`; false when it is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

export class OsquerydProcess {
  readonly pid: number;
  readonly exited: Promise<ProcessExit>;
  /** Both output streams ended and every line was handed to `onLine` (may come after `exited`). */
  readonly outputEnded: Promise<void>;
  private exitInfo: ProcessExit | undefined;
  private terminating: Promise<ProcessExit> | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly releaseGuard: () => void;

  private constructor(child: ResultPromise, pid: number, onLine: SpawnOsquerydOptions['onLine']) {
    this.pid = pid;
    this.releaseGuard = guardProcessGroup(pid);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        if (this.killTimer) clearTimeout(this.killTimer);
        // Whatever the leader left behind in its group (a watchdog worker) goes too.
        signalGroup(pid, 'SIGKILL');
        this.releaseGuard();
        resolve(this.exitInfo);
      });
    });
    const ended: Array<Promise<void>> = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      const readable = child[stream] as Readable | null;
      if (!readable) continue;
      const lines = createInterface({ input: readable, crlfDelay: Infinity });
      lines.on('line', (line) => onLine?.(stream, line));
      ended.push(new Promise((resolve) => lines.once('close', () => resolve())));
    }
    this.outputEnded = Promise.all(ended).then(() => undefined);
    // reject: false, so this never rejects; awaiting it keeps execa's bookkeeping tidy.
    void child.catch(() => undefined);
  }

  /**
   * Spawn detached (own process group), no shell, stdin closed. E_LAUNCH when
   * the binary cannot be started (missing, not executable).
   */
  static async spawn(options: SpawnOsquerydOptions): Promise<OsquerydProcess> {
    const child = execa(options.file, options.args, {
      detached: true,
      // No effect for detached children (execa skips them); exit-guard.ts covers it.
      cleanup: true,
      reject: false,
      shell: false,
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      // The supervisor's environment minus what belongs to the supervisor alone: systemd's
      // notify socket (osqueryd must not signal readiness for us).
      extendEnv: false,
      env: { ...childEnvironment(process.env), ...options.env },
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    if (child.pid === undefined) {
      const result = await child;
      throw new LauncherError('E_LAUNCH', `cannot start osqueryd ${options.file}: ${result.shortMessage ?? errorMessage(result.cause)}`, {
        cause: result.cause,
      });
    }
    return new OsquerydProcess(child, child.pid, options.onLine);
  }

  get exitStatus(): ProcessExit | undefined {
    return this.exitInfo;
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  /** SIGTERM the group, SIGKILL it after `graceMs`. Idempotent: later calls join the first. */
  terminate(graceMs: number): Promise<ProcessExit> {
    if (!this.terminating) {
      if (!this.hasExited) {
        signalGroup(this.pid, 'SIGTERM');
        this.killTimer = setTimeout(() => signalGroup(this.pid, 'SIGKILL'), graceMs);
      }
      this.terminating = this.exited;
    }
    return this.terminating;
  }

  /** SIGKILL the group now (also escalates a terminate in progress). */
  kill(): Promise<ProcessExit> {
    if (!this.hasExited) signalGroup(this.pid, 'SIGKILL');
    return this.terminate(0);
  }
}

/** The environment osqueryd inherits: ours, without the supervisor-only variables. */
export function childEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (
      v === undefined ||
      k === 'NOTIFY_SOCKET' ||
      k === 'LISTEN_FDS' ||
      k === 'LISTEN_PID' ||
      k === 'WATCHDOG_USEC' ||
      k === 'WATCHDOG_PID'
    )
      continue;
    out[k] = v;
  }
  return out;
}
