/**
 * What /proc says about the processes a scenario cares about: liveness
 * (zombies count as dead: an orphan reparented to a PID 1 that never reaps
 * stays a zombie), resident memory, and every live osqueryd whose command
 * line names a socket directory — the ground truth for "exactly one osqueryd
 * per registration" and "no orphan left", independent of what the supervisor
 * believes.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Resident set (MB) of one process, undefined when it is gone. */
export function rssMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds a process has used, undefined when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 (1-based) of stat, i.e. 11 and 12 after the state field.
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}

export interface OsquerydProcess {
  pid: number;
  /** The manager socket from --extensions_socket. */
  socket: string;
  /** The registration, from --database_path=<root>/registrations/<id>/osquery.db. */
  registrationId: string | undefined;
}

function cmdline(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a.length > 0);
  } catch {
    return undefined;
  }
}

/** Live processes (wrappers included) whose command line names a path under `dir`: everything a supervisor on that root started. */
export function processesUnder(dir: string): number[] {
  const needle = `${dir.replace(/\/+$/, '')}/`;
  let pids: number[];
  try {
    pids = readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number);
  } catch {
    return [];
  }
  return pids.filter((pid) => pid !== process.pid && (cmdline(pid)?.some((a) => a.includes(needle)) ?? false) && isAlive(pid));
}

/** Live processes whose command line gives a manager socket inside `socketDir` (our osqueryds). */
export function osquerydProcesses(socketDir: string): OsquerydProcess[] {
  const prefix = `--extensions_socket=${socketDir.replace(/\/+$/, '')}/`;
  const out: OsquerydProcess[] = [];
  let pids: number[];
  try {
    pids = readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number);
  } catch {
    return out;
  }
  for (const pid of pids) {
    if (pid === process.pid) continue;
    const args = cmdline(pid);
    const socketArg = args?.find((a) => a.startsWith(prefix));
    if (!args || !socketArg || !isAlive(pid)) continue;
    // The quiet wrapper is `sh script args...` for an instant before it execs: skip the shell.
    if (/(^|\/)(sh|bash|dash)$/.test(args[0] ?? '')) continue;
    const db = args.find((a) => a.startsWith('--database_path='));
    const m = db ? /\/registrations\/([^/]+)\/osquery\.db\/?$/.exec(db) : null;
    out.push({ pid, socket: socketArg.slice('--extensions_socket='.length), registrationId: m?.[1] });
  }
  return out;
}

/** SIGKILL each live pid (and its group when it leads one); returns the ones that were alive. */
export function killAll(pids: Iterable<number>): number[] {
  const alive = [...new Set(pids)].filter(isAlive);
  for (const p of alive) {
    for (const target of [-p, p]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // not a group leader, or already gone
      }
    }
  }
  return alive;
}
