/**
 * Online backups of the supervisor's database (issue 19): every
 * `intervalMs` (6 h by default, and at start when the newest backup is
 * older than that), better-sqlite3's `backup()` copies the live database
 * page by page (it yields to the event loop between steps, so nothing
 * waits) into a 0600 temp file in `<root>/backups/`; the copy is checked
 * (made self-contained: rollback journal mode) and checked with
 * `PRAGMA quick_check` in a worker thread (a read of the whole file,
 * off the event loop), fsynced and renamed into place, so a backup file is
 * always complete and sound. The newest `keep` are kept.
 */
import { closeSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { LauncherError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log/logger.js';
import type { SqliteDatabase } from './database.js';
import { fsyncFile, syncDirectory } from './fsync.js';

const PREFIX = 'launcher-';
const SUFFIX = '.sqlite';

/** Backup files in `dir`, newest first (names sort by their UTC timestamp). */
export function listBackups(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((n) => n.startsWith(PREFIX) && n.endsWith(SUFFIX))
    .sort()
    .reverse()
    .map((n) => join(dir, n));
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let problem;
try {
  const Database = require(workerData.driver);
  const db = new Database(workerData.path, { fileMustExist: true });
  // A copy of a WAL database says WAL in its header: make it one self-contained file (no -wal/-shm next to it).
  db.pragma('journal_mode = DELETE');
  const rows = db.pragma('quick_check(20)', { simple: false }).map((r) => Object.values(r)[0]);
  db.close();
  problem = rows.length === 1 && rows[0] === 'ok' ? null : rows.join('; ');
} catch (err) { problem = String(err && err.message || err); }
parentPort.postMessage(problem);
`;

/** Make a closed database file self-contained (rollback journal) and quick_check it, in a worker thread: undefined when sound, else the problem. */
export function quickCheckInWorker(path: string): Promise<string | undefined> {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, driver } });
    let answered = false;
    w.once('message', (m: unknown) => {
      answered = true;
      resolve(typeof m === 'string' ? m : undefined);
    });
    w.once('error', reject);
    w.once('exit', (code) => {
      if (!answered) reject(new Error(`quick_check worker exited with code ${code}`));
    });
  });
}

export interface BackupOptions {
  /** Directory of the backups (created 0700). */
  dir: string;
  /** Time between backups (ms); 0 disables the schedule. Default 6 h. */
  intervalMs?: number;
  /** Backups kept (the oldest beyond are deleted). Default 3. */
  keep?: number;
  logger?: Logger;
}

export const DEFAULT_BACKUP_INTERVAL_MS = 6 * 3600 * 1000;
export const DEFAULT_BACKUPS_KEPT = 3;

const stamp = (): string => new Date().toISOString().replace(/[-:]/g, '').replace('.', '');

export class BackupScheduler {
  readonly dir: string;
  private readonly db: SqliteDatabase;
  private readonly intervalMs: number;
  private readonly keep: number;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<string> | undefined;
  private stopped = false;

  constructor(db: SqliteDatabase, o: BackupOptions) {
    this.db = db;
    this.dir = o.dir;
    this.intervalMs = o.intervalMs ?? DEFAULT_BACKUP_INTERVAL_MS;
    this.keep = Math.max(1, Math.floor(o.keep ?? DEFAULT_BACKUPS_KEPT));
    this.log = o.logger ?? silentLogger();
  }

  /** Schedule backups: the first when the newest one is older than the interval (at once when there is none). */
  start(): void {
    if (this.intervalMs <= 0 || this.stopped) return;
    const newest = listBackups(this.dir)[0];
    let age = Infinity;
    if (newest) {
      try {
        age = Date.now() - statSync(newest).mtimeMs;
      } catch {
        age = Infinity;
      }
    }
    this.schedule(Math.max(0, Math.min(this.intervalMs, this.intervalMs - age)));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.runNow()
        .catch((err: unknown) =>
          this.log.error({ dir: this.dir, err: errorMessage(err) }, 'database backup failed; next attempt at the next interval'),
        )
        .finally(() => this.schedule(this.intervalMs));
    }, ms);
    this.timer.unref();
  }

  /** Take a backup now (one at a time); resolves with its path. */
  runNow(): Promise<string> {
    this.running ??= this.backup().finally(() => (this.running = undefined));
    return this.running;
  }

  private async backup(): Promise<string> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const name = `${PREFIX}${stamp()}${SUFFIX}`;
    const final = join(this.dir, name);
    const tmp = join(this.dir, `.${name}.tmp`);
    rmSync(tmp, { force: true });
    // Created 0600 first: the copy carries registrations' enroll secrets and node keys.
    closeSync(openSync(tmp, 'w', 0o600));
    try {
      const started = Date.now();
      await this.db.backup(tmp);
      const problem = await quickCheckInWorker(tmp);
      if (problem !== undefined) throw new LauncherError('E_STORE', `backup ${tmp} failed its quick_check: ${problem}`);
      fsyncFile(tmp);
      renameSync(tmp, final);
      syncDirectory(this.dir);
      this.log.info({ backup: final, bytes: statSync(final).size, ms: Date.now() - started }, 'database backed up');
    } catch (err) {
      for (const p of [tmp, `${tmp}-wal`, `${tmp}-shm`]) rmSync(p, { force: true });
      throw err;
    }
    for (const old of listBackups(this.dir).slice(this.keep)) for (const p of [old, `${old}-wal`, `${old}-shm`]) rmSync(p, { force: true });
    return final;
  }

  /** Stop the schedule; waits for a backup in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }
}
