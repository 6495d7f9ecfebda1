/**
 * The per-run files in the socket directory, all named `<short>.*`
 * (paths.ts): the manager socket, our extension sockets, osqueryd's pidfile
 * and our launch record. The launch record is written right after spawn, so
 * a supervisor killed at any later point leaves enough for the next start to
 * find and kill the process group (reaper.ts).
 */
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LaunchRecord {
  pid: number;
  registration_id: string;
  run_id: string;
  socket: string;
  supervisor_pid: number;
  started_at: string;
}

export function writeLaunchRecord(path: string, rec: LaunchRecord): void {
  writeFileSync(path, `${JSON.stringify(rec)}\n`, { mode: 0o600 });
}

/** Every file of the run whose manager socket is `socketPath` (`<short>.em` → `<short>.*`). */
export function runFiles(socketPath: string): string[] {
  const dir = join(socketPath, '..');
  const prefix = `${basename(socketPath).replace(/\.em$/, '')}.`;
  try {
    return readdirSync(dir)
      .filter((name) => name.startsWith(prefix))
      .map((name) => join(dir, name));
  } catch {
    return [];
  }
}

/**
 * Remove the run's files; retried briefly (launcher: every 500 ms for 5 s)
 * because osqueryd may still be writing its pidfile or socket as it dies.
 */
export async function removeRunFiles(socketPath: string, attempts = 5, pauseMs = 100): Promise<string[]> {
  let left: string[] = [];
  for (let i = 0; i < attempts; i++) {
    left = [];
    for (const file of runFiles(socketPath)) {
      try {
        rmSync(file, { force: true });
      } catch {
        left.push(file);
      }
    }
    if (left.length === 0 && runFiles(socketPath).length === 0) return [];
    await sleep(pauseMs);
  }
  return runFiles(socketPath);
}
