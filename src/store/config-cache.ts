/**
 * The last good (already rewritten) osquery config per registration
 * (reference §2.7 step 4), served when the device server is unreachable.
 */
import { ensureSchema, type SqliteDatabase } from './database.js';

const MIGRATIONS = [
  `CREATE TABLE config_cache_entries (
     registration_id TEXT PRIMARY KEY,
     config TEXT NOT NULL,
     updated_at INTEGER NOT NULL
   )`,
];

export interface CachedConfig {
  config: string;
  /** ms since epoch. */
  updatedAt: number;
}

export class ConfigCache {
  private readonly db: SqliteDatabase;

  constructor(db: SqliteDatabase) {
    this.db = db;
    ensureSchema(db, 'config_cache', MIGRATIONS);
  }

  get(registrationId: string): CachedConfig | undefined {
    const row = this.db.prepare('SELECT config, updated_at FROM config_cache_entries WHERE registration_id = ?').get(registrationId) as
      | { config: string; updated_at: number }
      | undefined;
    return row ? { config: row.config, updatedAt: row.updated_at } : undefined;
  }

  set(registrationId: string, config: string): void {
    this.db
      .prepare(
        `INSERT INTO config_cache_entries (registration_id, config, updated_at) VALUES (?, ?, ?)
         ON CONFLICT(registration_id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`,
      )
      .run(registrationId, config, Date.now());
  }

  clear(registrationId: string): void {
    this.db.prepare('DELETE FROM config_cache_entries WHERE registration_id = ?').run(registrationId);
  }
}
