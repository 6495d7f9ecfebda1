/**
 * Query quarantine (issue 16, ADR 0017): the incidents in which a query was a
 * suspect (it was in flight when its registration's osqueryd crashed, was
 * OOM-killed or stopped answering), and the queries quarantined for a
 * registration after enough incidents within a window.
 *
 * A query is identified per registration by its kind, its name and the
 * SHA-256 of its SQL: a scheduled query by name + SQL hash (the same name with
 * new SQL is a new query), a distributed query by its SQL hash alone (the
 * backend gives every run of the same SQL a new id), stored with name ''.
 * Every value is bound as a parameter; SQL text and names are data here.
 *
 * Writes go through the write queue (ADR 0009); reads are single indexed
 * SELECTs. The state table, the control API and the extension all read here.
 */
import { createHash } from 'node:crypto';
import { LauncherError } from '../errors.js';
import { ensureSchema, type SqliteDatabase } from './database.js';
import { writesOf } from './write-queue.js';

const MIGRATIONS = [
  `CREATE TABLE quarantine_incidents (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     registration_id TEXT NOT NULL,
     kind TEXT NOT NULL,
     name TEXT NOT NULL,
     sql_hash TEXT NOT NULL,
     at INTEGER NOT NULL,
     cause TEXT NOT NULL
   )`,
  'CREATE INDEX quarantine_incidents_by_query ON quarantine_incidents (registration_id, kind, name, sql_hash, at)',
  `CREATE TABLE quarantine_entries (
     registration_id TEXT NOT NULL,
     kind TEXT NOT NULL,
     name TEXT NOT NULL,
     sql_hash TEXT NOT NULL,
     sql TEXT NOT NULL,
     query_id TEXT NOT NULL,
     reason TEXT NOT NULL,
     incidents INTEGER NOT NULL,
     quarantined_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     PRIMARY KEY (registration_id, kind, name, sql_hash)
   )`,
];

export type QuarantineKind = 'distributed' | 'scheduled';

/** The quarantine rule; every value positive. */
export interface QuarantinePolicy {
  /** Incidents within `windowMs` that quarantine a query. */
  incidents: number;
  windowMs: number;
  /** How long a quarantine lasts unless released. */
  ttlMs: number;
}

export const DEFAULT_QUARANTINE_POLICY: QuarantinePolicy = {
  incidents: 2,
  windowMs: 24 * 3600_000,
  ttlMs: 7 * 24 * 3600_000,
};

/** Longest SQL text kept (and shown) per entry; the hash is over the whole text. */
const MAX_SQL_CHARS = 4096;
/** Longest name or reason kept. */
const MAX_TEXT_CHARS = 1024;

export interface SuspectQuery {
  kind: QuarantineKind;
  /** Scheduled: the query's name in the config. Distributed: the backend's id of this run (kept for display only). */
  name: string;
  sql: string;
}

export interface QuarantineEntry {
  registrationId: string;
  kind: QuarantineKind;
  /** Scheduled: the query name; distributed: ''. */
  name: string;
  sqlHash: string;
  sql: string;
  /** Distributed: the backend id of the last incident's run; scheduled: the name. */
  queryId: string;
  reason: string;
  incidents: number;
  /** ms since the epoch. */
  quarantinedAt: number;
  expiresAt: number;
}

export interface IncidentOutcome {
  /** Incidents of this query within the window, this one included. */
  incidents: number;
  /** Set when this incident quarantined the query. */
  quarantined?: QuarantineEntry;
}

/** The SQL hash queries are matched by (hex SHA-256 of the exact text). */
export function sqlHash(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}

const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max)}…` : s);

interface EntryRow {
  registration_id: string;
  kind: string;
  name: string;
  sql_hash: string;
  sql: string;
  query_id: string;
  reason: string;
  incidents: number;
  quarantined_at: number;
  expires_at: number;
}

const toEntry = (r: EntryRow): QuarantineEntry => ({
  registrationId: r.registration_id,
  kind: r.kind === 'scheduled' ? 'scheduled' : 'distributed',
  name: r.name,
  sqlHash: r.sql_hash,
  sql: r.sql,
  queryId: r.query_id,
  reason: r.reason,
  incidents: r.incidents,
  quarantinedAt: r.quarantined_at,
  expiresAt: r.expires_at,
});

/** The stored name of a query: distributed queries are matched by SQL alone. */
const keyName = (q: SuspectQuery) => (q.kind === 'scheduled' ? clip(q.name, MAX_TEXT_CHARS) : '');

export class QuarantineStore {
  private readonly db: SqliteDatabase;

  constructor(db: SqliteDatabase) {
    this.db = db;
    ensureSchema(db, 'quarantine', MIGRATIONS);
  }

  /**
   * Record one incident of `query` on `registrationId`; once `policy.incidents`
   * fall within the window, quarantine it. Resolves when written.
   */
  async recordIncident(
    registrationId: string,
    query: SuspectQuery,
    cause: string,
    policy: QuarantinePolicy,
    now = Date.now(),
  ): Promise<IncidentOutcome> {
    const name = keyName(query);
    const hash = sqlHash(query.sql);
    const outcome: IncidentOutcome = { incidents: 0 };
    await writesOf(this.db).run(`quarantine incident of registration ${registrationId}`, () => {
      const tx = this.db.transaction(() => {
        this.db
          .prepare('DELETE FROM quarantine_incidents WHERE registration_id = ? AND kind = ? AND name = ? AND sql_hash = ? AND at < ?')
          .run(registrationId, query.kind, name, hash, now - policy.windowMs);
        this.db
          .prepare('INSERT INTO quarantine_incidents (registration_id, kind, name, sql_hash, at, cause) VALUES (?, ?, ?, ?, ?, ?)')
          .run(registrationId, query.kind, name, hash, now, clip(cause, MAX_TEXT_CHARS));
        const { n } = this.db
          .prepare('SELECT count(*) AS n FROM quarantine_incidents WHERE registration_id = ? AND kind = ? AND name = ? AND sql_hash = ?')
          .get(registrationId, query.kind, name, hash) as { n: number };
        outcome.incidents = n;
        if (n < policy.incidents) return;
        const entry: QuarantineEntry = {
          registrationId,
          kind: query.kind,
          name,
          sqlHash: hash,
          sql: clip(query.sql, MAX_SQL_CHARS),
          queryId: clip(query.name, MAX_TEXT_CHARS),
          reason: clip(`${n} incidents within ${Math.round(policy.windowMs / 1000)} s; last: ${cause}`, MAX_TEXT_CHARS),
          incidents: n,
          quarantinedAt: now,
          expiresAt: now + policy.ttlMs,
        };
        this.db
          .prepare(
            `INSERT INTO quarantine_entries (registration_id, kind, name, sql_hash, sql, query_id, reason, incidents, quarantined_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (registration_id, kind, name, sql_hash) DO UPDATE SET
               sql = excluded.sql, query_id = excluded.query_id, reason = excluded.reason, incidents = excluded.incidents,
               quarantined_at = excluded.quarantined_at, expires_at = excluded.expires_at`,
          )
          .run(registrationId, entry.kind, name, hash, entry.sql, entry.queryId, entry.reason, n, entry.quarantinedAt, entry.expiresAt);
        // A fresh count after a release: the incidents that led here are spent.
        this.db
          .prepare('DELETE FROM quarantine_incidents WHERE registration_id = ? AND kind = ? AND name = ? AND sql_hash = ?')
          .run(registrationId, query.kind, name, hash);
        outcome.quarantined = entry;
      });
      tx();
    });
    return outcome;
  }

  /** The unexpired quarantine of a query on a registration, if any. */
  find(registrationId: string, kind: QuarantineKind, name: string, sql: string, now = Date.now()): QuarantineEntry | undefined {
    const row = this.db
      .prepare('SELECT * FROM quarantine_entries WHERE registration_id = ? AND kind = ? AND name = ? AND sql_hash = ? AND expires_at > ?')
      .get(registrationId, kind, kind === 'scheduled' ? clip(name, MAX_TEXT_CHARS) : '', sqlHash(sql), now) as EntryRow | undefined;
    return row ? toEntry(row) : undefined;
  }

  /**
   * Unexpired entries of the given registrations (every registration when
   * `ids` is undefined), oldest first. With ids: one primary-key lookup per id
   * (state tables read this on every query, test/state/cheap-reads).
   */
  list(ids?: readonly string[], now = Date.now()): QuarantineEntry[] {
    let rows: EntryRow[];
    if (ids === undefined) {
      rows = this.db.prepare('SELECT * FROM quarantine_entries WHERE expires_at > ?').all(now) as EntryRow[];
    } else {
      const byId = this.db.prepare('SELECT * FROM quarantine_entries WHERE registration_id = ? AND expires_at > ?');
      rows = [...new Set(ids)].flatMap((id) => byId.all(id, now) as EntryRow[]);
    }
    return rows.map(toEntry).sort((a, b) => a.quarantinedAt - b.quarantinedAt || a.registrationId.localeCompare(b.registrationId));
  }

  /**
   * Release the quarantine(s) of one registration matching `query`: a
   * scheduled query's name, a SQL hash (or a prefix of at least 8 hex digits),
   * or the exact SQL text. Returns the entries released (none: E_NOT_FOUND).
   */
  async release(registrationId: string, query: string, now = Date.now()): Promise<QuarantineEntry[]> {
    if (query.trim() === '') throw new LauncherError('E_INVALID_ARGUMENT', 'quarantine release: the query is empty');
    const all = this.list([registrationId], now);
    const q = query.trim().toLowerCase();
    const hexPrefix = /^[0-9a-f]{8,64}$/.test(q);
    const hit = all.filter(
      (e) => (e.kind === 'scheduled' && e.name === query) || e.sql === query || (hexPrefix && e.sqlHash.startsWith(q)),
    );
    if (hit.length === 0)
      throw new LauncherError(
        'E_NOT_FOUND',
        `registration ${registrationId} has no quarantined query matching ${JSON.stringify(clip(query, 80))} (a name, a SQL hash or the SQL)`,
      );
    await writesOf(this.db).run(`quarantine release on registration ${registrationId}`, () => {
      const del = this.db.prepare('DELETE FROM quarantine_entries WHERE registration_id = ? AND kind = ? AND name = ? AND sql_hash = ?');
      const delIncidents = this.db.prepare(
        'DELETE FROM quarantine_incidents WHERE registration_id = ? AND kind = ? AND name = ? AND sql_hash = ?',
      );
      this.db.transaction(() => {
        for (const e of hit) {
          del.run(registrationId, e.kind, e.name, e.sqlHash);
          delIncidents.run(registrationId, e.kind, e.name, e.sqlHash);
        }
      })();
    });
    return hit;
  }

  /** Everything of a removed registration. */
  removeRegistration(registrationId: string): Promise<void> {
    return writesOf(this.db).run(`quarantine of removed registration ${registrationId}`, () => {
      this.db.prepare('DELETE FROM quarantine_entries WHERE registration_id = ?').run(registrationId);
      this.db.prepare('DELETE FROM quarantine_incidents WHERE registration_id = ?').run(registrationId);
    });
  }

  /** Drop expired entries (reads already ignore them) and, with `windowMs`, incidents too old to count. */
  purgeExpired(now = Date.now(), windowMs?: number): Promise<void> {
    return writesOf(this.db).run('quarantine expiry', () => {
      this.db.prepare('DELETE FROM quarantine_entries WHERE expires_at <= ?').run(now);
      if (windowMs !== undefined) this.db.prepare('DELETE FROM quarantine_incidents WHERE at < ?').run(now - windowMs);
    });
  }
}
