/**
 * The log buffer's per-(registration, kind) streams (issue 14): each stream
 * is its own rowid table `log_buffer_s<N>`, so the FIFO order is the table's
 * INTEGER PRIMARY KEY and an append is one plain insert (no secondary index,
 * no counter row). Count, bytes and the next id live in memory, loaded once
 * per connection from the table and changed only after the transaction that
 * changed the rows committed. Only the dropped counters (rare) are rows.
 *
 * State is shared by every LogBuffer on the same connection (a supervisor
 * has one per extension plus one for stats). One process appends: the
 * supervisor lock (src/runtime/supervisor-lock.ts) keeps it so.
 */
import type Database from 'better-sqlite3';
import type { SqliteDatabase } from './database.js';
import { connectionOf } from './watched-database.js';

export type LogKind = 'result' | 'status';

export interface Stream {
  readonly id: number;
  readonly table: string;
  count: number;
  bytes: number;
  /** The id the next appended log gets (ids only grow within a process: a stale ack never hits a new log). */
  next: number;
  droppedCap: number;
  droppedOversize: number;
  readonly stmt: StreamStatements;
}

/**
 * A stream's statements, each prepared on first use (issue 14): a prepared
 * statement costs ~3 KB of native memory, and most of the seven are rare
 * (over a cap, stats, oversize logs), while a supervisor with 50
 * registrations loads 100 streams.
 */
export class StreamStatements {
  private readonly conn: SqliteDatabase;
  private readonly t: string;
  private _insert: Database.Statement | undefined;
  private _scan: Database.Statement | undefined;
  private _dropOldest: Database.Statement | undefined;
  private _ack: Database.Statement | undefined;
  private _oldest: Database.Statement | undefined;
  private _sizes: Database.Statement | undefined;
  private _dropThrough: Database.Statement | undefined;

  constructor(conn: SqliteDatabase, table: string) {
    this.conn = conn;
    this.t = table;
  }

  get insert(): Database.Statement {
    return (this._insert ??= this.conn.prepare(`INSERT INTO ${this.t} (id, bytes, created_at, data) VALUES (?, ?, ?, ?)`));
  }

  get scan(): Database.Statement {
    return (this._scan ??= this.conn.prepare(`SELECT id, data, bytes, created_at AS createdAt FROM ${this.t} ORDER BY id`));
  }

  get dropOldest(): Database.Statement {
    return (this._dropOldest ??= this.conn.prepare(
      `DELETE FROM ${this.t} WHERE id IN (SELECT id FROM ${this.t} ORDER BY id LIMIT ?) RETURNING bytes`,
    ));
  }

  get ack(): Database.Statement {
    return (this._ack ??= this.conn.prepare(`DELETE FROM ${this.t} WHERE id IN (SELECT value FROM json_each(?)) RETURNING bytes`));
  }

  /** created_at of the oldest log: a rowid seek, not a scan. */
  get oldest(): Database.Statement {
    return (this._oldest ??= this.conn.prepare(`SELECT created_at FROM ${this.t} WHERE id > 0 ORDER BY id LIMIT 1`).pluck());
  }

  /** id and bytes, oldest first (for the total byte cap). */
  get sizes(): Database.Statement {
    return (this._sizes ??= this.conn.prepare(`SELECT id, bytes FROM ${this.t} ORDER BY id`));
  }

  /** Delete every log up to an id. */
  get dropThrough(): Database.Statement {
    return (this._dropThrough ??= this.conn.prepare(`DELETE FROM ${this.t} WHERE id <= ?`));
  }
}

export const STREAMS_TABLE = `CREATE TABLE IF NOT EXISTS log_buffer_streams (
  stream_id INTEGER PRIMARY KEY,
  registration_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  dropped_cap INTEGER NOT NULL DEFAULT 0,
  dropped_oversize INTEGER NOT NULL DEFAULT 0,
  UNIQUE (registration_id, kind)
)`;

export const streamTable = (id: number): string => `log_buffer_s${id}`;

export function createStreamTable(db: SqliteDatabase, id: number): void {
  db.exec(
    `CREATE TABLE IF NOT EXISTS ${streamTable(id)} (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL, created_at INTEGER NOT NULL, data TEXT NOT NULL)`,
  );
}

interface StreamRow {
  stream_id: number;
  dropped_cap: number;
  dropped_oversize: number;
}

/** The streams of one SQLite connection. */
export class StreamRegistry {
  private readonly conn: SqliteDatabase;
  private readonly streams = new Map<string, Stream>();
  readonly bumpDropped: Database.Statement;
  /** Runs its argument in one transaction (`.immediate(fn)` takes the write lock first). */
  readonly transaction: Database.Transaction<(fn: () => unknown) => unknown>;

  constructor(conn: SqliteDatabase) {
    this.conn = conn;
    this.transaction = conn.transaction((fn: () => unknown) => fn());
    this.bumpDropped = conn.prepare(
      'UPDATE log_buffer_streams SET dropped_cap = dropped_cap + ?, dropped_oversize = dropped_oversize + ? WHERE stream_id = ?',
    );
  }

  /** The stream, loaded from its table on first use; undefined when it was never created. */
  find(registrationId: string, kind: LogKind): Stream | undefined {
    const key = `${kind}\u0000${registrationId}`;
    const known = this.streams.get(key);
    if (known) return known;
    const row = this.conn
      .prepare('SELECT stream_id, dropped_cap, dropped_oversize FROM log_buffer_streams WHERE registration_id = ? AND kind = ?')
      .get(registrationId, kind) as StreamRow | undefined;
    if (!row) return undefined;
    const s = this.load(row);
    this.streams.set(key, s);
    return s;
  }

  /** The stream, created (its own committed transaction) when missing. */
  ensure(registrationId: string, kind: LogKind): Stream {
    const found = this.find(registrationId, kind);
    if (found) return found;
    this.conn
      .transaction(() => {
        this.conn.prepare('INSERT OR IGNORE INTO log_buffer_streams (registration_id, kind) VALUES (?, ?)').run(registrationId, kind);
        const id = this.conn
          .prepare('SELECT stream_id FROM log_buffer_streams WHERE registration_id = ? AND kind = ?')
          .pluck()
          .get(registrationId, kind) as number;
        createStreamTable(this.conn, id);
      })
      .immediate();
    return this.find(registrationId, kind)!;
  }

  /** Every stream of the connection (each loaded once), with its registration. */
  all(): Array<{ registrationId: string; stream: Stream }> {
    if (!this.allLoaded) {
      const rows = this.conn.prepare('SELECT registration_id, kind FROM log_buffer_streams').all() as Array<{
        registration_id: string;
        kind: LogKind;
      }>;
      for (const r of rows) this.find(r.registration_id, r.kind);
      this.allLoaded = true;
    }
    return [...this.streams].map(([key, stream]) => ({ registrationId: key.slice(key.indexOf('\u0000') + 1), stream }));
  }

  private allLoaded = false;

  /** Bytes of every stream of the connection together (each loaded once), as committed. */
  totalBytes(): number {
    if (!this.allLoaded) this.all();
    let total = 0;
    for (const s of this.streams.values()) total += s.bytes;
    return total;
  }

  /** Drop a registration's streams (rows and tables) and forget them. */
  clear(registrationId: string): void {
    this.conn
      .transaction(() => {
        const ids = this.conn
          .prepare('SELECT stream_id FROM log_buffer_streams WHERE registration_id = ?')
          .pluck()
          .all(registrationId) as number[];
        for (const id of ids) this.conn.exec(`DROP TABLE IF EXISTS ${streamTable(id)}`);
        this.conn.prepare('DELETE FROM log_buffer_streams WHERE registration_id = ?').run(registrationId);
      })
      .immediate();
    for (const kind of ['status', 'result'] as const) this.streams.delete(`${kind}\u0000${registrationId}`);
  }

  private load(row: StreamRow): Stream {
    const t = streamTable(row.stream_id);
    createStreamTable(this.conn, row.stream_id);
    const agg = this.conn.prepare(`SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b, coalesce(max(id), 0) AS m FROM ${t}`).get() as {
      n: number;
      b: number;
      m: number;
    };
    return {
      id: row.stream_id,
      table: t,
      count: agg.n,
      bytes: agg.b,
      next: agg.m + 1,
      droppedCap: row.dropped_cap,
      droppedOversize: row.dropped_oversize,
      stmt: new StreamStatements(this.conn, t),
    };
  }
}

const registries = new WeakMap<object, StreamRegistry>();

/** The registry of the connection `db` uses now (a new one after the database was recreated). */
export function streamsOf(db: SqliteDatabase): StreamRegistry {
  const conn = connectionOf(db);
  let r = registries.get(conn);
  if (!r) {
    r = new StreamRegistry(conn);
    registries.set(conn, r);
  }
  return r;
}
