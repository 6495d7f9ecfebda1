import Database from 'better-sqlite3';
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { LauncherError, errorMessage } from '../errors.js';

export type SqliteDatabase = Database.Database;

/**
 * How long SQLite itself may wait for another process's lock, in ms. Kept to
 * a few ms so no call blocks the event loop for longer (issue 13, ADR 0009):
 * writers that meet a lock retry asynchronously (busy.ts, write-queue.ts).
 */
export const BUSY_TIMEOUT_MS = 2;

/** SQLite files that hold secrets get this mode whatever the umask. */
const SECRET_FILE_MODE = 0o600;

/**
 * Open (or create) the supervisor's SQLite database: WAL so readers never
 * block the writer, NORMAL sync (durable across process crashes; a power
 * loss can lose the last transactions, as with any WAL database), a busy
 * timeout of BUSY_TIMEOUT_MS so a lock held by another process (an operator's
 * `sqlite3` shell, a backup tool) is met with SQLITE_BUSY at once instead of
 * freezing the event loop. The file and its -wal/-shm are made 0600. Each
 * store module owns its tables and creates them with `ensureSchema`.
 */
export function openDatabase(path: string): SqliteDatabase {
  try {
    if (path !== ':memory:') {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // Created 0600 before SQLite opens it: SQLite would create it 0644 & ~umask, and gives -wal/-shm the file's mode.
      closeSync(openSync(path, 'a', SECRET_FILE_MODE));
    }
    const db = new Database(path);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // Free pages can be given back to the file system (issue 19; takes effect on a new file, see reclaim.ts).
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    if (path !== ':memory:') restrictDatabaseFiles(path);
    return db;
  } catch (err) {
    throw new LauncherError('E_STORE', `cannot open database ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

/** chmod 0600 the database file and its -wal/-shm (those that exist). */
export function restrictDatabaseFiles(path: string): void {
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      chmodSync(p, SECRET_FILE_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** A schema step: SQL, or a function run inside the migration transaction (data carried over). */
export type Migration = string | ((db: SqliteDatabase) => void);

/**
 * Apply a module's schema once per database: `version` bumps run the listed
 * steps in order inside one transaction, recorded in `schema_versions`.
 */
export function ensureSchema(db: SqliteDatabase, module: string, migrations: readonly Migration[]): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_versions (module TEXT PRIMARY KEY, version INTEGER NOT NULL)');
  const row = db.prepare('SELECT version FROM schema_versions WHERE module = ?').get(module) as { version: number } | undefined;
  const current = row?.version ?? 0;
  if (current >= migrations.length) return;
  db.transaction(() => {
    for (let v = current; v < migrations.length; v++) {
      const m = migrations[v]!;
      if (typeof m === 'string') db.exec(m);
      else m(db);
    }
    db.prepare(
      'INSERT INTO schema_versions (module, version) VALUES (?, ?) ON CONFLICT(module) DO UPDATE SET version = excluded.version',
    ).run(module, migrations.length);
  }).immediate();
}
