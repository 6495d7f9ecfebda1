/**
 * `<root>/supervisor.pid`: one supervisor per root. Holding it is what makes
 * reaping safe — every launch record under the root then belongs to a dead
 * supervisor. The file names the pid and its start time, so a stale file whose
 * pid was reused by an unrelated process is recognised as stale.
 */
import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { LauncherError, errorMessage } from '../errors.js';
import { isProcessAlive, readProcStat } from './proc-info.js';

interface LockContent {
  pid: number;
  start_ticks: number | null;
}

function holderAlive(c: LockContent): boolean {
  if (!isProcessAlive(c.pid)) return false;
  const st = readProcStat(c.pid);
  return c.start_ticks === null || st === undefined || st.startTicks === c.start_ticks;
}

export class SupervisorLock {
  readonly path: string;
  private released = false;

  private constructor(path: string) {
    this.path = path;
  }

  /** Take the lock; E_ALREADY_EXISTS when a live supervisor holds it. A stale lock is taken over. */
  static acquire(root: string): SupervisorLock {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    const path = join(root, 'supervisor.pid');
    const mine: LockContent = { pid: process.pid, start_ticks: readProcStat(process.pid)?.startTicks ?? null };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o600);
        writeSync(fd, `${JSON.stringify(mine)}\n`);
        closeSync(fd);
        return new SupervisorLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new LauncherError('E_STORE', `cannot create supervisor lock ${path}: ${errorMessage(err)}`, { cause: err });
        }
      }
      let held: LockContent | undefined;
      try {
        held = JSON.parse(readFileSync(path, 'utf8')) as LockContent;
      } catch {
        held = undefined; // unreadable or half-written: stale
      }
      if (held && typeof held.pid === 'number' && holderAlive(held)) {
        throw new LauncherError('E_ALREADY_EXISTS', `another supervisor (pid ${held.pid}) holds ${path}`);
      }
      rmSync(path, { force: true });
    }
    throw new LauncherError('E_ALREADY_EXISTS', `supervisor lock ${path} was taken while we were replacing a stale one`);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    rmSync(this.path, { force: true });
  }
}
