/**
 * osqueryd's pidfile mutex (`--pidfile`, `--force`). A pidfile naming a live
 * osqueryd refuses the start ("Pidfile check failed"); with `--force` that
 * process is SIGKILLed first. As in osqueryd, a pidfile naming a dead process
 * or a live process that is not an osqueryd is stale and overwritten. The
 * stand-in counts as an osqueryd (its command line holds `osqueryd-sim`).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { glog } from './glog.js';

export class PidfileError extends Error {}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = readProc(pid, 'stat');
  if (stat === undefined) return true; // no /proc: trust kill(0)
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

function isOsqueryd(pid: number): boolean {
  const comm = readProc(pid, 'comm') ?? '';
  const cmdline = (readProc(pid, 'cmdline') ?? '').replace(/\0/g, ' ');
  return comm.includes('osqueryd') || cmdline.includes('osqueryd');
}

/** Check the pidfile and write ours; throws PidfileError when another osqueryd holds it. */
export async function acquirePidfile(path: string, force: boolean): Promise<void> {
  let content: string | undefined;
  try {
    content = readFileSync(path, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new PidfileError(`Pidfile check failed: could not read pidfile ${path}: ${(err as Error).message}`);
  }
  const pid = content !== undefined && /^\d+$/.test(content) ? Number(content) : 0;
  if (pid > 0 && pid !== process.pid && processAlive(pid)) {
    if (isOsqueryd(pid)) {
      if (!force) throw new PidfileError(`Pidfile check failed: osqueryd (${pid}) is already running`);
      glog.info('system.cpp', 331, `Tried to force remove the existing osqueryd (${pid})`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      // osqueryd retries the pidfile 5 times, 2 s apart.
      const deadline = Date.now() + 10_000;
      while (processAlive(pid)) {
        if (Date.now() > deadline) throw new PidfileError(`Pidfile check failed: osqueryd (${pid}) did not stop after SIGKILL`);
        await sleep(20);
      }
    } else {
      glog.vlog('system.cpp', 345, `Found stale process for osqueryd (${pid}) removing pidfile`);
    }
  }
  try {
    rmSync(path, { force: true });
    writeFileSync(path, String(process.pid), { mode: 0o644 });
  } catch (err) {
    throw new PidfileError(`Pidfile check failed: cannot write ${path}: ${(err as Error).message}`);
  }
  glog.info('system.cpp', 362, `Writing osqueryd pid (${process.pid}) to ${path}`);
}

/** Remove the pidfile if it still names this process. */
export function releasePidfile(path: string): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(process.pid)) rmSync(path, { force: true });
  } catch {
    // already gone
  }
}
