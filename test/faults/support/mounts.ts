/**
 * Real "disk full" and "read-only" for the disk scenarios. Tests run as root,
 * so chmod stops nothing; what does is a mount: a small tmpfs (full for real:
 * ENOSPC / SQLITE_FULL) or a read-only bind mount (EROFS). Mounting needs
 * CAP_SYS_ADMIN, which CI containers often lack, so `mountsPermitted()`
 * probes once and the tests fall back to what needs no privilege (a file in
 * place of a directory; a SQLite database capped at its size and filled to
 * SQLITE_FULL) when it is refused.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SqliteDatabase } from '../../../src/store/database.js';

const FILLER_TABLE = 'reliability_filler';

let probed: { ok: boolean; reason: string } | undefined;

export function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
}

/** Whether this process may mount (tmpfs and bind mounts), and why not. */
export function mountsPermitted(): { ok: boolean; reason: string } {
  if (probed) return probed;
  // RELIABILITY_NO_MOUNTS=1 takes the unprivileged path even where mounting works (to test it).
  if (process.env.RELIABILITY_NO_MOUNTS === '1') return (probed = { ok: false, reason: 'mounts disabled by RELIABILITY_NO_MOUNTS' });
  const dir = mkdtempSync(join(tmpdir(), 'mnt-'));
  const inner = join(dir, 'ro');
  try {
    // Both kinds the tests use: a tmpfs, and a read-only bind mount.
    run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    try {
      mkdirSync(inner);
      bindReadOnly(inner);
      unmount(inner);
    } finally {
      unmount(dir);
    }
    probed = { ok: true, reason: 'mount permitted' };
  } catch (err) {
    probed = {
      ok: false,
      reason: `mount refused: ${((err as { stderr?: Buffer }).stderr ?? '').toString().trim() || (err as Error).message}`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return probed;
}

export function mountTmpfs(dir: string, sizeBytes: number): void {
  run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir]);
}

/** Make `dir` read-only in place (a read-only bind mount of itself). */
export function bindReadOnly(dir: string): void {
  run('mount', ['--bind', dir, dir]);
  run('mount', ['-o', 'remount,bind,ro', dir]);
}

/** Unmount (lazily when busy: a process may still hold a file there). Never throws. */
export function unmount(dir: string): void {
  try {
    run('umount', [dir]);
  } catch {
    try {
      run('umount', ['-l', dir]);
    } catch {
      // not mounted
    }
  }
}

/** Write `path` until the filesystem is full (ENOSPC); returns the bytes written. */
export function fillUp(path: string): number {
  const fd = openSync(path, 'w');
  let written = 0;
  try {
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          written += writeSync(fd, chunk);
        } catch {
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

/**
 * A full disk as SQLite sees it, without privileges: cap the database at its
 * current page count (max_page_count) and fill its free pages with a scratch
 * table until SQLITE_FULL. Returns the bytes written. Undo with sqliteUnfill.
 */
export function sqliteFillUp(db: SqliteDatabase): number {
  db.exec(`CREATE TABLE IF NOT EXISTS ${FILLER_TABLE} (b BLOB)`);
  db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
  const insert = db.prepare(`INSERT INTO ${FILLER_TABLE} (b) VALUES (?)`);
  let written = 0;
  for (const size of [64 << 10, 4 << 10, 512, 32]) {
    const blob = Buffer.alloc(size);
    for (;;) {
      try {
        insert.run(blob);
        written += size;
      } catch {
        break;
      }
    }
  }
  return written;
}

export function sqliteUnfill(db: SqliteDatabase): void {
  db.pragma('max_page_count = 1073741823');
  db.exec(`DROP TABLE IF EXISTS ${FILLER_TABLE}`);
}
