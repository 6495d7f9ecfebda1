/**
 * Integrity of the supervisor's database at open (issue 19). A power loss or
 * a bad disk can leave `launcher.sqlite` corrupt; SQLite then fails on some
 * page later, at an arbitrary call. Before the supervisor opens it, the file
 * gets `PRAGMA quick_check` (a read of every page, no index cross-check).
 * When it fails, the file and its -wal/-shm are renamed aside (never
 * deleted: an operator may want to salvage them), the newest backup that
 * itself passes quick_check is copied into place (temp file + rename, 0600),
 * and the outcome is returned for the caller to log and record. Without a
 * good backup the supervisor starts with a fresh store (the caller says so
 * loudly); the config's registrations are added again either way.
 */
import Database from 'better-sqlite3';
import { chmodSync, copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage } from '../errors.js';
import { listBackups } from './backups.js';
import { fsyncFile, syncDirectory } from './fsync.js';

export type IntegrityOutcome = 'ok' | 'new' | 'restored' | 'fresh';

export interface IntegrityReport {
  outcome: IntegrityOutcome;
  path: string;
  /** What quick_check (or opening) said about the corrupt file. */
  problem?: string;
  /** Where the corrupt file was moved. */
  corruptPath?: string;
  /** The backup that was restored. */
  backup?: string;
  /** Backups that were found corrupt themselves (left in place), with their problem. */
  badBackups?: Array<{ path: string; problem: string }>;
}

/** SQLite error codes that mean the file's content is damaged (not a lock, a permission or a missing file). */
const CORRUPT_CODES = new Set([
  'SQLITE_CORRUPT',
  'SQLITE_NOTADB',
  'SQLITE_CORRUPT_INDEX',
  'SQLITE_CORRUPT_SEQUENCE',
  'SQLITE_CORRUPT_VTAB',
]);

/**
 * `PRAGMA quick_check` of the database at `path`: undefined when it is
 * sound, else the problem. Errors that are not about the content (EACCES,
 * a lock) are thrown.
 */
export function quickCheck(path: string): string | undefined {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { fileMustExist: true });
    db.pragma('busy_timeout = 2000');
    const rows = db.pragma('quick_check(20)', { simple: false }) as Array<Record<string, string>>;
    const lines = rows.map((r) => Object.values(r)[0] ?? '');
    return lines.length === 1 && lines[0] === 'ok' ? undefined : lines.join('; ');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && CORRUPT_CODES.has(code)) return `${code}: ${errorMessage(err)}`;
    throw err;
  } finally {
    try {
      db?.close();
    } catch {
      // a corrupt file can fail to close cleanly; nothing to keep
    }
  }
}

const stamp = (): string => new Date().toISOString().replace(/[-:]/g, '').replace('.', '');

/** Rename `path` and its -wal/-shm aside; returns the new name of the main file. */
function moveAside(path: string): string {
  const aside = `${path}.corrupt-${stamp()}`;
  for (const suffix of ['-wal', '-shm']) if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
  renameSync(path, aside);
  return aside;
}

/** Copy `from` to `to` atomically (temp file, fsync, rename), 0600. */
export function copyAtomically(from: string, to: string): void {
  const tmp = `${to}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  copyFileSync(from, tmp);
  chmodSync(tmp, 0o600);
  fsyncFile(tmp);
  renameSync(tmp, to);
  syncDirectory(dirname(to));
}

/**
 * Check `path` before it is opened; on corruption move it aside and restore
 * the newest sound backup from `backupDir` (or leave no file: a fresh store).
 */
export function checkBeforeOpen(path: string, backupDir: string): IntegrityReport {
  if (!existsSync(path)) return { outcome: 'new', path };
  const problem = quickCheck(path);
  if (problem === undefined) return { outcome: 'ok', path };
  const corruptPath = moveAside(path);
  const badBackups: Array<{ path: string; problem: string }> = [];
  for (const b of listBackups(backupDir)) {
    let bad: string | undefined;
    try {
      bad = quickCheck(b);
    } catch (err) {
      bad = errorMessage(err);
    }
    if (bad !== undefined) {
      badBackups.push({ path: b, problem: bad });
      continue;
    }
    copyAtomically(b, path);
    return { outcome: 'restored', path, problem, corruptPath, backup: b, badBackups };
  }
  return { outcome: 'fresh', path, problem, corruptPath, badBackups };
}
