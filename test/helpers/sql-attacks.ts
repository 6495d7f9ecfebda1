/**
 * Issue 13: the SQL a tenant tried against the stand-in to reach the
 * supervisor's database, and a snapshot of that database and its directory
 * to prove afterwards that nothing changed. Shared by the stand-in's own test
 * (manager socket) and the end-to-end one (control API, distributed query).
 */
import Database from 'better-sqlite3';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** SQLite's message for SQLITE_AUTH, as osqueryd reports a denied statement. */
export const NOT_AUTHORIZED = 'not authorized';

export interface SqlAttack {
  name: string;
  sql: string;
  /** SQLite's message for the refusal (status code 1). */
  message: string;
}

/**
 * Every variant from issue 13. `db` is the database to reach (the
 * supervisor's `launcher.sqlite`), `fresh` a path that must never be created,
 * `table` a table of the stand-in to write to.
 */
export function sqlAttacks(db: string, fresh: string, table = 'time'): SqlAttack[] {
  const q = (p: string) => `'${p.replace(/'/g, "''")}'`;
  const list: Array<Omit<SqlAttack, 'message'> & { message?: string }> = [
    { name: 'ATTACH then read', sql: `ATTACH DATABASE ${q(db)} AS x; SELECT * FROM x.node_keys_registrations` },
    {
      name: "ATTACH then UPDATE the vendor's registration",
      sql: `ATTACH DATABASE ${q(db)} AS x; UPDATE x.registrations SET enroll_secret = 'pwned' WHERE id = 'kolide'`,
    },
    {
      name: "ATTACH then plant a trigger on the vendor's log buffer",
      sql: `ATTACH DATABASE ${q(db)} AS x; CREATE TRIGGER x.wipe AFTER INSERT ON log_buffer_entries BEGIN DELETE FROM log_buffer_entries; END`,
    },
    {
      name: 'ATTACH then BEGIN IMMEDIATE (hold the lock)',
      sql: `ATTACH DATABASE ${q(db)} AS x; BEGIN IMMEDIATE; SELECT count(*) FROM x.registrations`,
    },
    { name: 'attach (lowercase)', sql: `attach database ${q(db)} as x` },
    { name: 'AtTaCh (mixed case, no DATABASE)', sql: `AtTaCh ${q(db)} aS x` },
    { name: '/* comment */ ATTACH', sql: `/*x*/ATTACH DATABASE ${q(db)} AS x` },
    { name: '-- comment, newline, ATTACH', sql: `-- x\nATTACH DATABASE ${q(db)} AS x` },
    { name: '; joined after a SELECT', sql: `select 1 as one; attach database ${q(db)} as x; select * from x.registrations` },
    { name: 'EXPLAIN ATTACH', sql: `EXPLAIN ATTACH DATABASE ${q(db)} AS x` },
    { name: 'ATTACH of a new path', sql: `ATTACH DATABASE ${q(fresh)} AS n` },
    { name: 'DETACH', sql: 'DETACH DATABASE main' },
    { name: 'CTE-wrapped INSERT', sql: `WITH x AS (SELECT 1) INSERT INTO ${table} (unix_time) SELECT * FROM x` },
    { name: 'INSERT … RETURNING', sql: `INSERT INTO ${table} (unix_time) VALUES (1) RETURNING *` },
    { name: 'REPLACE', sql: `REPLACE INTO ${table} (unix_time) VALUES (1)` },
    { name: 'UPDATE', sql: `UPDATE ${table} SET unix_time = 0` },
    { name: 'DELETE', sql: `DELETE FROM ${table}` },
    { name: 'CREATE TRIGGER', sql: `CREATE TRIGGER wipe AFTER INSERT ON ${table} BEGIN DELETE FROM ${table}; END` },
    { name: 'CREATE TABLE', sql: 'CREATE TABLE planted (a)' },
    { name: 'CREATE VIEW', sql: 'CREATE TEMP VIEW planted AS SELECT 1' },
    { name: 'DROP TABLE', sql: `DROP TABLE ${table}` },
    { name: 'ALTER TABLE', sql: `ALTER TABLE ${table} RENAME TO moved` },
    { name: 'VACUUM', sql: 'VACUUM' },
    { name: 'VACUUM INTO a new path', sql: `VACUUM INTO ${q(fresh)}` },
    { name: 'PRAGMA write (user_version)', sql: 'PRAGMA user_version = 7' },
    { name: 'PRAGMA query_only = 0', sql: 'PRAGMA query_only = 0' },
    { name: 'PRAGMA writable_schema', sql: 'PRAGMA writable_schema = ON' },
    { name: 'PRAGMA soft_heap_limit (applies at prepare time)', sql: 'PRAGMA soft_heap_limit = 1' },
    { name: 'BEGIN IMMEDIATE', sql: 'BEGIN IMMEDIATE' },
    { name: 'SAVEPOINT', sql: 'SAVEPOINT s' },
    { name: 'COMMIT', sql: 'COMMIT' },
    { name: 'load_extension()', sql: "SELECT load_extension('/tmp/evil.so')", message: 'not authorized to use function: load_extension' },
  ];
  return list.map((a) => ({ ...a, message: a.message ?? NOT_AUTHORIZED }));
}

export interface DatabaseSnapshot {
  /** sqlite_master rows (type, name, sql): a trigger or view would show here. */
  schema: unknown[];
  /** Every row of every table, in rowid order. */
  rows: Record<string, unknown[]>;
  /** Files beside the database (and in `extraDirs`). */
  files: string[];
}

/** Read a SQLite file without changing it (read-only connection). */
export function snapshotDatabase(path: string, extraDirs: string[] = []): DatabaseSnapshot {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const schema = db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name').all();
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[];
    const rows: Record<string, unknown[]> = {};
    for (const t of tables) rows[t] = db.prepare(`SELECT * FROM "${t.replace(/"/g, '""')}" ORDER BY rowid`).all();
    const dir = join(path, '..');
    const files = [dir, ...extraDirs].flatMap((d) => (existsSync(d) ? readdirSync(d).map((f) => join(d, f)) : [])).sort();
    return { schema, rows, files };
  } finally {
    db.close();
  }
}
