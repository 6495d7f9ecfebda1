import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { LauncherError, errorMessage } from '../errors.js';

export type SqliteDatabase = Database.Database;

/**
 * Open (or create) the supervisor's SQLite database: WAL so readers never
 * block the writer, NORMAL sync (durable across process crashes; a power
 * loss can lose the last transactions, as with any WAL database), a busy
 * timeout so a second process (the CLI, a restart racing an old one) waits
 * instead of failing. Each store module owns its tables and creates them with
 * `ensureSchema`.
 */
export function openDatabase(path: string): SqliteDatabase {
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    return db;
  } catch (err) {
    throw new LauncherError('E_STORE', `cannot open database ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * Apply a module's schema once per database: `version` bumps run the listed
 * statements in order inside one transaction, recorded in `schema_versions`.
 */
export function ensureSchema(db: SqliteDatabase, module: string, migrations: readonly string[]): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_versions (module TEXT PRIMARY KEY, version INTEGER NOT NULL)');
  const row = db.prepare('SELECT version FROM schema_versions WHERE module = ?').get(module) as { version: number } | undefined;
  const current = row?.version ?? 0;
  if (current >= migrations.length) return;
  db.transaction(() => {
    for (let v = current; v < migrations.length; v++) db.exec(migrations[v]!);
    db.prepare('INSERT INTO schema_versions (module, version) VALUES (?, ?) ON CONFLICT(module) DO UPDATE SET version = excluded.version').run(module, migrations.length);
  })();
}
