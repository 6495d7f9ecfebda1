/**
 * The last good (already rewritten) osquery config per registration
 * (docs/protocol/device.md#config-cache), served when the device server is unreachable.
 * Writes go through the write queue; until one committed, the config is
 * served from memory (shared per database), as node-keys.ts does.
 */
import { ensureSchema, type SqliteDatabase } from './database.js';
import { writesOf } from './write-queue.js';

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

const unsaved = new WeakMap<object, Map<string, CachedConfig | undefined>>();

export class ConfigCache {
  private readonly db: SqliteDatabase;
  private readonly unsaved: Map<string, CachedConfig | undefined>;

  constructor(db: SqliteDatabase) {
    this.db = db;
    ensureSchema(db, 'config_cache', MIGRATIONS);
    let m = unsaved.get(db);
    if (!m) unsaved.set(db, (m = new Map()));
    this.unsaved = m;
  }

  private save(registrationId: string, entry: CachedConfig | undefined, write: () => void): Promise<void> {
    this.unsaved.set(registrationId, entry);
    return writesOf(this.db).run(`caching the config of registration ${registrationId}`, () => {
      write();
      if (this.unsaved.get(registrationId) === entry) this.unsaved.delete(registrationId);
    });
  }

  get(registrationId: string): CachedConfig | undefined {
    if (this.unsaved.has(registrationId)) {
      const e = this.unsaved.get(registrationId);
      return e ? { ...e } : undefined;
    }
    const row = this.db.prepare('SELECT config, updated_at FROM config_cache_entries WHERE registration_id = ?').get(registrationId) as
      | { config: string; updated_at: number }
      | undefined;
    return row ? { config: row.config, updatedAt: row.updated_at } : undefined;
  }

  set(registrationId: string, config: string): Promise<void> {
    const entry = { config, updatedAt: Date.now() };
    return this.save(
      registrationId,
      entry,
      () =>
        void this.db
          .prepare(
            `INSERT INTO config_cache_entries (registration_id, config, updated_at) VALUES (?, ?, ?)
           ON CONFLICT(registration_id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`,
          )
          .run(registrationId, config, entry.updatedAt),
    );
  }

  clear(registrationId: string): Promise<void> {
    return this.save(
      registrationId,
      undefined,
      () => void this.db.prepare('DELETE FROM config_cache_entries WHERE registration_id = ?').run(registrationId),
    );
  }
}
