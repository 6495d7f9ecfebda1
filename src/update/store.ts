/**
 * What the update module remembers across restarts (issue 17), in the
 * supervisor's database: one JSON document (`update_state`: which version
 * each registration runs and ran before, pins, versions marked bad, the
 * rollout in progress, the last check) and a bounded event log
 * (`update_events`). The document is held in memory and written through the
 * database's write queue after each change (ADR 0009: a locked database
 * never stalls the supervisor); it is small and always written whole, so a
 * crash leaves the previous or the next state, never a mix.
 */
import { ensureSchema, type SqliteDatabase } from '../store/database.js';
import { writesOf } from '../store/write-queue.js';

export const EVENTS_KEPT = 500;

export interface Assignment {
  /** The installed version this registration runs; null: the configured osqueryd_path. */
  version: string | null;
  /** What it ran before the last move (where a rollback goes). */
  previous: string | null;
  /** RFC 3339 UTC. */
  since: string;
}

export interface Pin {
  version: string;
  /** `config` pins are re-read from the config at every start; `api` pins stay until unpinned. */
  source: 'config' | 'api';
  at: string;
}

export interface VersionRecord {
  state: 'installed' | 'bad';
  reason?: string;
  at: string;
}

export type RolloutState = 'running' | 'done' | 'rolled_back';

export interface Rollout {
  version: string;
  state: RolloutState;
  canary: string;
  /** Every registration the rollout moves, in order (canary first, vendor last). */
  order: string[];
  /** Those already moved and verified. */
  done: string[];
  /** The one being moved and watched now. */
  current: string | null;
  /** When the current registration's watch started (its soak runs from here). */
  currentSince: string | null;
  startedAt: string;
  updatedAt: string;
  detail: string | null;
}

export interface LastCheck {
  at: string;
  result: 'ok' | 'refused' | 'unreachable' | 'failed';
  error: string | null;
  /** The version the channel points at, when it was read. */
  available: string | null;
}

export interface UpdateState {
  assignments: Record<string, Assignment>;
  pins: Record<string, Pin>;
  versions: Record<string, VersionRecord>;
  rollout: Rollout | null;
  lastCheck: LastCheck | null;
  /** The highest version ever accepted from the repository: the channel never goes below it (anti-rollback). */
  highest: string | null;
}

export interface UpdateEvent {
  at: string;
  version: string | null;
  registrationId: string | null;
  event: string;
  detail: string;
}

const MIGRATIONS = [
  'CREATE TABLE update_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
  `CREATE TABLE update_events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at TEXT NOT NULL,
     version TEXT,
     registration_id TEXT,
     event TEXT NOT NULL,
     detail TEXT NOT NULL
   )`,
];

export function emptyState(): UpdateState {
  return { assignments: {}, pins: {}, versions: {}, rollout: null, lastCheck: null, highest: null };
}

export class UpdateStore {
  private readonly db: SqliteDatabase;
  readonly state: UpdateState;

  constructor(db: SqliteDatabase) {
    this.db = db;
    ensureSchema(db, 'update', MIGRATIONS);
    const row = db.prepare("SELECT value FROM update_state WHERE key = 'state'").get() as { value: string } | undefined;
    let loaded = emptyState();
    if (row) {
      try {
        loaded = { ...loaded, ...(JSON.parse(row.value) as Partial<UpdateState>) };
      } catch {
        // A document we cannot read (hand-edited): start over; the versions on disk are rediscovered.
      }
    }
    this.state = loaded;
  }

  /** Persist the whole document (after a change to `state`). */
  save(): Promise<void> {
    const value = JSON.stringify(this.state);
    return writesOf(this.db).run('update state', () => {
      this.db
        .prepare("INSERT INTO update_state (key, value) VALUES ('state', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        .run(value);
    });
  }

  record(e: UpdateEvent): Promise<void> {
    return writesOf(this.db).run('update event', () => {
      this.db
        .prepare('INSERT INTO update_events (at, version, registration_id, event, detail) VALUES (?, ?, ?, ?, ?)')
        .run(e.at, e.version, e.registrationId, e.event, e.detail);
      this.db.prepare('DELETE FROM update_events WHERE seq <= (SELECT MAX(seq) FROM update_events) - ?').run(EVENTS_KEPT);
    });
  }

  /** Newest first. */
  events(limit = 50): UpdateEvent[] {
    const rows = this.db
      .prepare('SELECT at, version, registration_id, event, detail FROM update_events ORDER BY seq DESC LIMIT ?')
      .all(Math.max(0, limit)) as Array<{
      at: string;
      version: string | null;
      registration_id: string | null;
      event: string;
      detail: string;
    }>;
    return rows.map((r) => ({ at: r.at, version: r.version, registrationId: r.registration_id, event: r.event, detail: r.detail }));
  }
}
