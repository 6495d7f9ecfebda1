/**
 * Durable FIFO buffers of osquery logs, one per (registration, type), in the
 * supervisor's SQLite file (WAL). docs/protocol/device.md#log-buffers: oldest first, a batch is
 * bounded by bytes, a single log over the per-log maximum is dropped (and
 * counted), a buffer over its cap loses its oldest entries (counted), and
 * only acknowledged ids are deleted, so delivery is at-least-once.
 *
 * Each buffer is its own rowid table (log-streams.ts): an append is one
 * insert, the order is the primary key, and count and bytes are kept in
 * memory, changed only once the transaction that changed the rows committed
 * (issue 14). Version 2 of the schema carries version 1's single entries
 * table over, ids and order kept.
 */
import { ensureSchema, type Migration, type SqliteDatabase } from './database.js';
import { LauncherError } from '../errors.js';
import { fairShares } from './fair-share.js';
import { writesOf } from './write-queue.js';
import { STREAMS_TABLE, createStreamTable, streamTable, streamsOf, type LogKind, type Stream } from './log-streams.js';

export type { LogKind } from './log-streams.js';
export const LOG_KINDS: readonly LogKind[] = ['status', 'result'];

const MIGRATIONS: readonly Migration[] = [
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
  migrateToStreams,
];

/** v1 → v2: one table per (registration, kind), entries copied in id order, dropped counters kept. */
function migrateToStreams(db: SqliteDatabase): void {
  db.exec(STREAMS_TABLE);
  const pairs = db
    .prepare(
      `SELECT registration_id, kind FROM log_buffer_counters
       UNION SELECT DISTINCT registration_id, kind FROM log_buffer_entries`,
    )
    .all() as { registration_id: string; kind: string }[];
  for (const p of pairs) {
    const c = db
      .prepare('SELECT dropped_cap, dropped_oversize FROM log_buffer_counters WHERE registration_id = ? AND kind = ?')
      .get(p.registration_id, p.kind) as { dropped_cap: number; dropped_oversize: number } | undefined;
    const id = db
      .prepare(
        'INSERT INTO log_buffer_streams (registration_id, kind, dropped_cap, dropped_oversize) VALUES (?, ?, ?, ?) RETURNING stream_id',
      )
      .pluck()
      .get(p.registration_id, p.kind, c?.dropped_cap ?? 0, c?.dropped_oversize ?? 0) as number;
    createStreamTable(db, id);
    db.prepare(
      `INSERT INTO ${streamTable(id)} (id, bytes, created_at, data)
       SELECT id, bytes, created_at, data FROM log_buffer_entries WHERE registration_id = ? AND kind = ? ORDER BY id`,
    ).run(p.registration_id, p.kind);
  }
  db.exec('DROP TABLE log_buffer_entries; DROP TABLE log_buffer_counters');
}

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

function checkKind(kind: string): asserts kind is LogKind {
  if (kind !== 'result' && kind !== 'status')
    throw new LauncherError('E_INVALID_ARGUMENT', `log kind must be "result" or "status", got ${JSON.stringify(kind)}`);
}

/** Default total size of all log buffers together (issue 19). */
export const DEFAULT_MAX_TOTAL_BYTES = 512 * 1024 * 1024;

interface Change {
  count: number;
  bytes: number;
  dropped: number;
  droppedBytes: number;
}

export class LogBuffer {
  readonly cap: number;
  /** Bytes of all buffers on the database together; past it the oldest logs go, fairly across registrations. */
  readonly maxTotalBytes: number;
  private readonly db: SqliteDatabase;

  constructor(db: SqliteDatabase, options: { cap?: number; maxTotalBytes?: number } = {}) {
    this.db = db;
    this.cap = Math.max(1, Math.floor(options.cap ?? DEFAULT_BUFFER_CAP));
    this.maxTotalBytes = Math.max(1, Math.floor(options.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES));
    ensureSchema(db, 'log_buffer', MIGRATIONS);
  }

  /**
   * `append` for the supervisor's own lines (self-checkups, update events): nobody waits to retry them, so while
   * another process holds the lock they wait in the store's ordered write queue (ADR 0009) instead of being lost.
   */
  appendQueued(registrationId: string, kind: LogKind, lines: readonly string[]): Promise<void> {
    return writesOf(this.db).run(`buffering ${lines.length} ${kind} log(s) of registration ${registrationId}`, () =>
      this.append(registrationId, kind, lines),
    );
  }

  /** Append lines to one buffer in one transaction; over the cap, the oldest go first. */
  append(registrationId: string, kind: LogKind, lines: readonly string[]): void {
    this.appendMany(lines.map((data) => ({ registrationId, kind, data })));
  }

  /**
   * Append to any buffers in one transaction (group commit). The in-memory
   * counts change only after the commit; a failed transaction changes nothing.
   */
  appendMany(entries: readonly LogAppend[]): void {
    if (entries.length === 0) return;
    for (const e of entries) checkKind(e.kind);
    const reg = streamsOf(this.db);
    const now = Date.now();
    const touched = new Map<Stream, Change>();
    // Consecutive entries mostly share a buffer: look the stream up only when it changes.
    let last: Stream | undefined;
    let lastKey: LogAppend | undefined;
    const streams = entries.map((e) => {
      if (!last || lastKey!.registrationId !== e.registrationId || lastKey!.kind !== e.kind) {
        last = reg.ensure(e.registrationId, e.kind);
        lastKey = e;
      }
      return last;
    });
    for (const s of streams) if (!touched.has(s)) touched.set(s, { count: 0, bytes: 0, dropped: 0, droppedBytes: 0 });
    reg.transaction.immediate(() => {
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        const s = streams[i]!;
        const d = touched.get(s)!;
        const bytes = Buffer.byteLength(e.data, 'utf8');
        s.stmt.insert.run(s.next + d.count, bytes, now, e.data);
        d.count++;
        d.bytes += bytes;
      }
      for (const [s, d] of touched) {
        const over = s.count + d.count - this.cap;
        if (over <= 0) continue;
        const rows = s.stmt.dropOldest.all(over) as { bytes: number }[];
        d.dropped = rows.length;
        d.droppedBytes = rows.reduce((sum, r) => sum + r.bytes, 0);
        reg.bumpDropped.run(rows.length, 0, s.id);
      }
      this.enforceTotal(touched);
    });
    for (const [s, d] of touched) {
      s.next += d.count;
      s.count += d.count - d.dropped;
      s.bytes += d.bytes - d.droppedBytes;
      s.droppedCap += d.dropped;
    }
  }

  /**
   * The total byte cap, inside appendMany's transaction: the excess is
   * shared fairly between registrations (fair-share.ts), each registration's
   * share between its buffers the same way, and each buffer gives its oldest
   * logs. Counted as dropped by the cap, per buffer.
   */
  private enforceTotal(touched: Map<Stream, Change>): void {
    const reg = streamsOf(this.db);
    const pending = (s: Stream): number => {
      const d = touched.get(s);
      return s.bytes + (d ? d.bytes - d.droppedBytes : 0);
    };
    // The common case, under the cap: one pass over the streams, nothing allocated (issue 14).
    let total = reg.totalBytes();
    for (const d of touched.values()) total += d.bytes - d.droppedBytes;
    if (total <= this.maxTotalBytes) return;
    const all = reg.all();
    const byReg = new Map<string, Stream[]>();
    for (const { registrationId, stream } of all) byReg.set(registrationId, [...(byReg.get(registrationId) ?? []), stream]);
    const groups = [...byReg.values()];
    const regShares = fairShares(
      groups.map((g) => g.reduce((sum, s) => sum + pending(s), 0)),
      total - this.maxTotalBytes,
    );
    groups.forEach((group, gi) => {
      const shares = fairShares(group.map(pending), regShares[gi]!);
      group.forEach((s, si) => {
        const share = shares[si]!;
        if (share <= 0) return;
        let n = 0;
        let bytes = 0;
        let last = 0;
        for (const row of s.stmt.sizes.iterate() as IterableIterator<{ id: number; bytes: number }>) {
          n++;
          bytes += row.bytes;
          last = row.id;
          if (bytes >= share) break;
        }
        if (n === 0) return;
        s.stmt.dropThrough.run(last);
        reg.bumpDropped.run(n, 0, s.id);
        const d = touched.get(s) ?? { count: 0, bytes: 0, dropped: 0, droppedBytes: 0 };
        d.dropped += n;
        d.droppedBytes += bytes;
        touched.set(s, d);
      });
    });
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
    const s = streamsOf(this.db).find(registrationId, kind);
    if (!s || s.count === 0) return { logs, bytes: 0, full: false, droppedOversize: 0 };
    const oversize: number[] = [];
    let bytes = 0;
    let full = false;
    for (const row of s.stmt.scan.iterate() as IterableIterator<BufferedLog>) {
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
      const reg = streamsOf(this.db);
      const rows = reg.transaction.immediate(() => {
        const deleted = s.stmt.ack.all(JSON.stringify(oversize)) as { bytes: number }[];
        reg.bumpDropped.run(0, deleted.length, s.id);
        return deleted;
      }) as { bytes: number }[];
      s.count -= rows.length;
      s.bytes -= rows.reduce((sum, r) => sum + r.bytes, 0);
      s.droppedOversize += rows.length;
    }
    return { logs, bytes, full, droppedOversize: oversize.length };
  }

  /** Delete acknowledged entries; ids no longer present are ignored. Returns how many were deleted. */
  ack(registrationId: string, kind: LogKind, ids: readonly number[]): number {
    checkKind(kind);
    if (ids.length === 0) return 0;
    const s = streamsOf(this.db).find(registrationId, kind);
    if (!s) return 0;
    const rows = s.stmt.ack.all(JSON.stringify(ids)) as { bytes: number }[];
    s.count -= rows.length;
    s.bytes -= rows.reduce((sum, r) => sum + r.bytes, 0);
    return rows.length;
  }

  stats(registrationId: string, kind: LogKind): LogBufferStats {
    checkKind(kind);
    const s = streamsOf(this.db).find(registrationId, kind);
    if (!s) return { count: 0, bytes: 0, droppedCap: 0, droppedOversize: 0, dropped: 0, oldestAgeMs: undefined };
    const oldest = s.count > 0 ? (s.stmt.oldest.get() as number | undefined) : undefined;
    return {
      count: s.count,
      bytes: s.bytes,
      droppedCap: s.droppedCap,
      droppedOversize: s.droppedOversize,
      dropped: s.droppedCap + s.droppedOversize,
      oldestAgeMs: oldest === undefined ? undefined : Math.max(0, Date.now() - oldest),
    };
  }

  statsFor(registrationId: string): Record<LogKind, LogBufferStats> {
    return { status: this.stats(registrationId, 'status'), result: this.stats(registrationId, 'result') };
  }

  /**
   * Delete a registration's buffers and counters. Synchronous: while the checkpoint worker holds the
   * write lock (a RESTART checkpoint, ADR 0023) it fails with SQLITE_BUSY; callers retry (`retryBusy`).
   */
  clear(registrationId: string): void {
    streamsOf(this.db).clear(registrationId);
  }
}
