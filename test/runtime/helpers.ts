/**
 * Shared bits of the runtime tests: short temp roots, bounded polling, a
 * zombie-aware liveness check, and where the osqueryd stand-in lives.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SIM_MAIN = join(REPO, 'dist/src/sim/main.js');
export const SIM_BIN = join(REPO, 'bin/osqueryd-sim');
/** Wrapper that execs the stand-in from dist/ (used when bin/osqueryd-sim is missing). */
export const SIM_WRAPPER = join(REPO, 'test/runtime/fixtures/osqueryd-sim.sh');

export function simAvailable(): boolean {
  return existsSync(SIM_MAIN);
}

export function osquerydPath(): string {
  return existsSync(SIM_BIN) ? SIM_BIN : SIM_WRAPPER;
}

/** A short temp dir (socket paths must stay under 97 bytes). */
export function tempRoot(prefix = 'rt'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** cgroup v1 memory hierarchy present and writable by us (a probe directory is made and removed). */
export function cgroupV1Writable(): boolean {
  if (process.platform !== 'linux' || !existsSync('/sys/fs/cgroup/memory/cgroup.procs')) return false;
  const probe = `/sys/fs/cgroup/memory/ol-probe-${process.pid}`;
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    return true;
  } catch {
    return false;
  }
}

/** Alive and not a zombie: kill(pid, 0) succeeds on zombies, /proc tells them apart. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Poll `check` until it returns something truthy; throws after `timeoutMs` with `what` and the last error. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Kill whatever is still alive among `pids` and report them (for afterEach). */
export async function reapAll(pids: Iterable<number>): Promise<number[]> {
  const list = [...new Set(pids)];
  try {
    await waitFor('processes to exit', () => list.every((p) => !isAlive(p)), 5_000);
    return [];
  } catch {
    const alive = list.filter(isAlive);
    for (const p of alive) {
      try {
        process.kill(-p, 'SIGKILL');
      } catch {
        /* not a group leader */
      }
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    return alive;
  }
}
