/**
 * Store incidents (issue 19): what happened to the database itself — a
 * corrupt file moved aside and a backup restored, or a fresh store started
 * because no sound backup existed. Recorded in the database that is used
 * from then on, so `sqlite3 launcher.sqlite 'select * from store_incidents'`
 * (and tests) can see it after the supervisor's log rotated away.
 */
import { ensureSchema, type SqliteDatabase } from './database.js';
import type { IntegrityReport } from './integrity.js';

export interface StoreIncident {
  at: number;
  kind: string;
  detail: string;
}

const MIGRATIONS = ['CREATE TABLE store_incidents (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL)'];

export class StoreIncidents {
  constructor(private readonly db: SqliteDatabase) {
    ensureSchema(db, 'store_incidents', MIGRATIONS);
  }

  record(kind: string, detail: Record<string, unknown>): void {
    this.db.prepare('INSERT INTO store_incidents (at, kind, detail) VALUES (?, ?, ?)').run(Date.now(), kind, JSON.stringify(detail));
  }

  list(): StoreIncident[] {
    return this.db.prepare('SELECT at, kind, detail FROM store_incidents ORDER BY id').all() as StoreIncident[];
  }

  /** Record an integrity report that found corruption; returns whether there was one. */
  recordIntegrity(r: IntegrityReport): boolean {
    if (r.outcome !== 'restored' && r.outcome !== 'fresh') return false;
    this.record(r.outcome === 'restored' ? 'corrupt_restored' : 'corrupt_fresh', {
      path: r.path,
      problem: r.problem,
      corrupt_path: r.corruptPath,
      ...(r.backup ? { backup: r.backup } : {}),
      bad_backups: r.badBackups ?? [],
    });
    return true;
  }
}
