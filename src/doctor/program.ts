/**
 * Running a program for a check (`osqueryd --version`, `systemctl show`): bounded in time and output, never
 * rejecting, and never leaving a process behind. The program gets its own process group, so a timeout ends it and
 * anything it started (a wrapper script's children included); and when the doctor runs inside the supervisor (the
 * self-checkups), a supervisor that exits mid-check takes every check's group with it.
 */
import { spawn } from 'node:child_process';
import { errorMessage } from '../errors.js';

export interface ProgramOutput {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Spawn error or timeout. */
  error?: string;
}

/** Process groups of programs still running. */
const running = new Set<number>();

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

let exitHook = false;
function ensureExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  // 'exit' handlers run synchronously on every normal exit, process.exit() included (the second-signal path).
  process.on('exit', () => {
    for (const g of running) killGroup(g);
  });
}

/** At most this much of each stream is kept. */
const MAX_OUTPUT = 1024 * 1024;

/** Run `file args` for at most `timeoutMs`; resolves with its exit, output and any spawn error or timeout. */
export function runProgram(file: string, args: readonly string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<ProgramOutput> {
  ensureExitHook();
  return new Promise((resolve) => {
    const child = spawn(file, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    let stdout = '';
    let stderr = '';
    let error: string | undefined;
    let done = false;
    const pgid = child.pid;
    if (pgid !== undefined) running.add(pgid);
    const keep = (acc: string, b: Buffer) => (acc.length < MAX_OUTPUT ? acc + b.toString('utf8').slice(0, MAX_OUTPUT - acc.length) : acc);
    child.stdout.on('data', (b: Buffer) => (stdout = keep(stdout, b)));
    child.stderr.on('data', (b: Buffer) => (stderr = keep(stderr, b)));
    const timer = setTimeout(() => {
      error = `no answer within ${timeoutMs} ms`;
      if (pgid !== undefined) killGroup(pgid);
    }, timeoutMs);
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (pgid !== undefined) {
        // The program is gone; anything it left in its group goes too.
        killGroup(pgid);
        running.delete(pgid);
      }
      resolve({ code, signal, stdout, stderr, ...(error !== undefined ? { error } : {}) });
    };
    child.on('error', (err) => {
      error = errorMessage(err);
      finish(null, null);
    });
    child.on('close', finish);
  });
}
