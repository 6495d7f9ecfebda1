/**
 * The stand-in's persistent state under `--database_path`. osqueryd's
 * database_path is a RocksDB directory; the stand-in keeps the directory and
 * puts one SQLite file in it, so a supervisor that pre-creates or removes the
 * directory sees osqueryd's layout. It holds what osqueryd keeps across
 * restarts: the previous results of each scheduled query (for diffs), the
 * instance id and generated host uuid, and the distributed-query denylist.
 * `--disable_database` / `--ephemeral` keep it in memory.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase, ensureSchema, type SqliteDatabase } from '../store/database.js';

export type Row = Record<string, string>;

export interface PreviousResults {
  query: string;
  epoch: number;
  counter: number;
  rows: Row[];
}

const MIGRATIONS = [
  `CREATE TABLE sim_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE sim_results (name TEXT PRIMARY KEY, query TEXT NOT NULL, epoch INTEGER NOT NULL, counter INTEGER NOT NULL, rows TEXT NOT NULL);
   CREATE TABLE sim_distributed_running (id TEXT PRIMARY KEY, query TEXT NOT NULL);
   CREATE TABLE sim_distributed_denylist (query TEXT PRIMARY KEY, expires INTEGER NOT NULL);`,
];

export const DATABASE_FILE = 'osqueryd-sim.sqlite';

export class SimStore {
  private readonly db: SqliteDatabase;

  private constructor(db: SqliteDatabase) {
    this.db = db;
    ensureSchema(db, 'sim', MIGRATIONS);
  }

  /** Open `<dir>/osqueryd-sim.sqlite`, or memory when dir is undefined. */
  static open(dir: string | undefined): SimStore {
    if (dir === undefined) return new SimStore(openDatabase(':memory:'));
    mkdirSync(dir, { recursive: true });
    return new SimStore(openDatabase(join(dir, DATABASE_FILE)));
  }

  setting(key: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM sim_settings WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  /** The stored value, or `make()` stored now. */
  settingOr(key: string, make: () => string): string {
    const existing = this.setting(key);
    if (existing !== undefined) return existing;
    const value = make();
    this.db.prepare('INSERT INTO sim_settings (key, value) VALUES (?, ?)').run(key, value);
    return value;
  }

  results(name: string): PreviousResults | undefined {
    const row = this.db.prepare('SELECT query, epoch, counter, rows FROM sim_results WHERE name = ?').get(name) as
      | { query: string; epoch: number; counter: number; rows: string }
      | undefined;
    return row && { query: row.query, epoch: row.epoch, counter: row.counter, rows: JSON.parse(row.rows) as Row[] };
  }

  saveResults(name: string, r: PreviousResults): void {
    this.db
      .prepare(
        `INSERT INTO sim_results (name, query, epoch, counter, rows) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET query = excluded.query, epoch = excluded.epoch, counter = excluded.counter, rows = excluded.rows`,
      )
      .run(name, r.query, r.epoch, r.counter, JSON.stringify(r.rows));
  }

  /** Mark a distributed query as executing; a crash leaves the mark for the next start. */
  markDistributedRunning(id: string, query: string): void {
    this.db.prepare('INSERT OR REPLACE INTO sim_distributed_running (id, query) VALUES (?, ?)').run(id, query);
  }

  clearDistributedRunning(id: string): void {
    this.db.prepare('DELETE FROM sim_distributed_running WHERE id = ?').run(id);
  }

  /** At start-up: queries that were executing when the previous process died are denylisted until `expires`. */
  denylistCrashedDistributed(expires: number): string[] {
    const rows = this.db.prepare('SELECT query FROM sim_distributed_running').all() as Array<{ query: string }>;
    const tx = this.db.transaction(() => {
      for (const r of rows) {
        this.db.prepare('INSERT OR REPLACE INTO sim_distributed_denylist (query, expires) VALUES (?, ?)').run(r.query, expires);
      }
      this.db.prepare('DELETE FROM sim_distributed_running').run();
    });
    tx();
    return rows.map((r) => r.query);
  }

  isDenylisted(query: string, now: number): boolean {
    const row = this.db.prepare('SELECT expires FROM sim_distributed_denylist WHERE query = ?').get(query) as
      | { expires: number }
      | undefined;
    return row !== undefined && row.expires > now;
  }

  close(): void {
    this.db.close();
  }
}
