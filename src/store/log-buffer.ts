/**
 * Durable FIFO buffers of osquery logs, one per (registration, type), in the
 * supervisor's SQLite file (WAL). Reference §2.8: oldest first, a batch is
 * bounded by bytes, a single log over the per-log maximum is dropped (and
 * counted), a buffer over its cap loses its oldest entries (counted), and
 * only acknowledged ids are deleted, so delivery is at-least-once.
 *
 * Counts and bytes live in a counters row updated in the same transaction as
 * the entries, so stats and the cap check never scan the buffer.
 */
import { ensureSchema, type SqliteDatabase } from './database.js';
import { LauncherError } from '../errors.js';
import type Database from 'better-sqlite3';

export type LogKind = 'result' | 'status';
export const LOG_KINDS: readonly LogKind[] = ['status', 'result'];

const MIGRATIONS = [
  `CREATE TABLE log_buffer_entries (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     registration_id TEXT NOT NULL,
     kind TEXT NOT NULL,
     data TEXT NOT NULL,
     bytes INTEGER NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX log_buffer_entries_fifo ON log_buffer_entries (registration_id, kind, id);
   CREATE TABLE log_buffer_counters (
     registration_id TEXT NOT NULL,
     kind TEXT NOT NULL,
     count INTEGER NOT NULL DEFAULT 0,
     bytes INTEGER NOT NULL DEFAULT 0,
     dropped_cap INTEGER NOT NULL DEFAULT 0,
     dropped_oversize INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (registration_id, kind)
   )`,
];

export const DEFAULT_BUFFER_CAP = 500_000;

export interface BufferedLog {
  id: number;
  data: string;
  bytes: number;
  /** ms since epoch when it was appended. */
  createdAt: number;
}

export interface LogBatch {
  logs: BufferedLog[];
  /** Sum of the logs' byte lengths. */
  bytes: number;
  /** True when the batch stopped because the next log would pass the limit. */
  full: boolean;
  /** Logs over the per-log maximum dropped while reading this batch. */
  droppedOversize: number;
}

export interface ReadBatchOptions {
  /** Stop before the batch passes this many bytes (it always takes at least one log). */
  limitBytes: number;
  /** A single log larger than this is dropped and counted. Default: limitBytes. */
  maxLogBytes?: number;
}

export interface LogBufferStats {
  count: number;
  bytes: number;
  droppedCap: number;
  droppedOversize: number;
  /** droppedCap + droppedOversize. */
  dropped: number;
  /** Age of the oldest entry (ms), undefined when empty. */
  oldestAgeMs: number | undefined;
}

export interface LogAppend {
  registrationId: string;
  kind: LogKind;
  data: string;
}

interface CounterRow {
  count: number;
  bytes: number;
  dropped_cap: number;
  dropped_oversize: number;
}

function checkKind(kind: string): asserts kind is LogKind {
  if (kind !== 'result' && kind !== 'status') throw new LauncherError('E_INVALID_ARGUMENT', `log kind must be "result" or "status", got ${JSON.stringify(kind)}`);
}

export class LogBuffer {
  readonly cap: number;
  private readonly db: SqliteDatabase;
  private readonly stmt: {
    insert: Database.Statement;
    bump: Database.Statement;
    counters: Database.Statement;
    dropOldest: Database.Statement;
    scan: Database.Statement;
    ack: Database.Statement;
    oldest: Database.Statement;
  };

  constructor(db: SqliteDatabase, options: { cap?: number } = {}) {
    this.db = db;
    this.cap = Math.max(1, Math.floor(options.cap ?? DEFAULT_BUFFER_CAP));
    ensureSchema(db, 'log_buffer', MIGRATIONS);
    this.stmt = {
      insert: db.prepare('INSERT INTO log_buffer_entries (registration_id, kind, data, bytes, created_at) VALUES (?, ?, ?, ?, ?)'),
      bump: db.prepare(
        `INSERT INTO log_buffer_counters (registration_id, kind, count, bytes, dropped_cap, dropped_oversize) VALUES (@r, @k, @count, @bytes, @cap, @over)
         ON CONFLICT(registration_id, kind) DO UPDATE SET count = count + @count, bytes = bytes + @bytes,
           dropped_cap = dropped_cap + @cap, dropped_oversize = dropped_oversize + @over
         RETURNING count`,
      ),
      counters: db.prepare('SELECT count, bytes, dropped_cap, dropped_oversize FROM log_buffer_counters WHERE registration_id = ? AND kind = ?'),
      dropOldest: db.prepare(
        `DELETE FROM log_buffer_entries WHERE id IN
           (SELECT id FROM log_buffer_entries WHERE registration_id = ? AND kind = ? ORDER BY id LIMIT ?)
         RETURNING bytes`,
      ),
      scan: db.prepare('SELECT id, data, bytes, created_at AS createdAt FROM log_buffer_entries WHERE registration_id = ? AND kind = ? ORDER BY id'),
      ack: db.prepare(
        `DELETE FROM log_buffer_entries WHERE registration_id = ? AND kind = ? AND id IN (SELECT value FROM json_each(?))
         RETURNING bytes`,
      ),
      oldest: db.prepare('SELECT created_at FROM log_buffer_entries WHERE registration_id = ? AND kind = ? ORDER BY id LIMIT 1').pluck(),
    };
  }

  /** Append lines to one buffer in one transaction; over the cap, the oldest go first. */
  append(registrationId: string, kind: LogKind, lines: readonly string[]): void {
    this.appendMany(lines.map((data) => ({ registrationId, kind, data })));
  }

  /** Append to any buffers in one transaction (group commit). */
  appendMany(entries: readonly LogAppend[]): void {
    if (entries.length === 0) return;
    for (const e of entries) checkKind(e.kind);
    const now = Date.now();
    this.db.transaction(() => {
      const added = new Map<string, { r: string; k: LogKind; count: number; bytes: number }>();
      for (const e of entries) {
        const bytes = Buffer.byteLength(e.data, 'utf8');
        this.stmt.insert.run(e.registrationId, e.kind, e.data, bytes, now);
        const key = `${e.kind}\u0000${e.registrationId}`;
        const a = added.get(key) ?? { r: e.registrationId, k: e.kind, count: 0, bytes: 0 };
        a.count++;
        a.bytes += bytes;
        added.set(key, a);
      }
      for (const a of added.values()) {
        const { count } = this.stmt.bump.get({ r: a.r, k: a.k, count: a.count, bytes: a.bytes, cap: 0, over: 0 }) as { count: number };
        if (count > this.cap) this.dropOldest(a.r, a.k, count - this.cap);
      }
    })();
  }

  private dropOldest(registrationId: string, kind: LogKind, n: number): void {
    const rows = this.stmt.dropOldest.all(registrationId, kind, n) as { bytes: number }[];
    const bytes = rows.reduce((s, r) => s + r.bytes, 0);
    this.stmt.bump.get({ r: registrationId, k: kind, count: -rows.length, bytes: -bytes, cap: rows.length, over: 0 });
  }

  /**
   * The oldest logs that fit in `limitBytes` (at least one when any is left).
   * Logs over `maxLogBytes` met on the way are deleted and counted as dropped.
   * Nothing else is removed: call ack() with the ids the server accepted.
   */
  readBatch(registrationId: string, kind: LogKind, options: ReadBatchOptions): LogBatch {
    checkKind(kind);
    const limit = Math.max(1, options.limitBytes);
    const maxLog = options.maxLogBytes ?? limit;
    const logs: BufferedLog[] = [];
    const oversize: number[] = [];
    let bytes = 0;
    let full = false;
    for (const row of this.stmt.scan.iterate(registrationId, kind) as IterableIterator<BufferedLog>) {
      if (row.bytes > maxLog) {
        oversize.push(row.id);
        continue;
      }
      if (logs.length > 0 && bytes + row.bytes > limit) {
        full = true;
        break;
      }
      logs.push(row);
      bytes += row.bytes;
    }
    if (oversize.length > 0) {
      this.db.transaction(() => {
        const rows = this.stmt.ack.all(registrationId, kind, JSON.stringify(oversize)) as { bytes: number }[];
        const dropped = rows.reduce((s, r) => s + r.bytes, 0);
        this.stmt.bump.get({ r: registrationId, k: kind, count: -rows.length, bytes: -dropped, cap: 0, over: rows.length });
      })();
    }
    return { logs, bytes, full, droppedOversize: oversize.length };
  }

  /** Delete acknowledged entries; ids no longer present are ignored. Returns how many were deleted. */
  ack(registrationId: string, kind: LogKind, ids: readonly number[]): number {
    checkKind(kind);
    if (ids.length === 0) return 0;
    return this.db.transaction(() => {
      const rows = this.stmt.ack.all(registrationId, kind, JSON.stringify(ids)) as { bytes: number }[];
      const bytes = rows.reduce((s, r) => s + r.bytes, 0);
      if (rows.length > 0) this.stmt.bump.get({ r: registrationId, k: kind, count: -rows.length, bytes: -bytes, cap: 0, over: 0 });
      return rows.length;
    })();
  }

  stats(registrationId: string, kind: LogKind): LogBufferStats {
    checkKind(kind);
    const c = (this.stmt.counters.get(registrationId, kind) as CounterRow | undefined) ?? { count: 0, bytes: 0, dropped_cap: 0, dropped_oversize: 0 };
    const oldest = this.stmt.oldest.get(registrationId, kind) as number | undefined;
    return {
      count: c.count,
      bytes: c.bytes,
      droppedCap: c.dropped_cap,
      droppedOversize: c.dropped_oversize,
      dropped: c.dropped_cap + c.dropped_oversize,
      oldestAgeMs: oldest === undefined ? undefined : Math.max(0, Date.now() - oldest),
    };
  }

  statsFor(registrationId: string): Record<LogKind, LogBufferStats> {
    return { status: this.stats(registrationId, 'status'), result: this.stats(registrationId, 'result') };
  }

  /** Delete a registration's buffers and counters. */
  clear(registrationId: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM log_buffer_entries WHERE registration_id = ?').run(registrationId);
      this.db.prepare('DELETE FROM log_buffer_counters WHERE registration_id = ?').run(registrationId);
    })();
  }
}
