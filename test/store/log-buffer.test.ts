import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type SqliteDatabase } from '../../src/store/database.js';
import { LogBuffer } from '../../src/store/log-buffer.js';
import { LogAppendQueue } from '../../src/store/log-append-queue.js';
import { shortTempDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => void };
let path: string;
let db: SqliteDatabase;

beforeEach(() => {
  tmp = shortTempDir('lb');
  path = join(tmp.dir, 'l.db');
  db = openDatabase(path);
});

afterEach(() => {
  if (db.open) db.close();
  tmp.cleanup();
});

const line = (i: number, size = 10) => `${String(i).padStart(size, '0')}`;

describe('LogBuffer', () => {
  it('is a FIFO per (registration, kind), durable across reopen', () => {
    const b = new LogBuffer(db);
    b.append('a', 'result', ['r1', 'r2']);
    b.append('a', 'status', ['s1']);
    b.append('b', 'result', ['other']);
    b.append('a', 'result', ['r3']);
    db.close();
    db = openDatabase(path);
    const again = new LogBuffer(db);
    expect(again.readBatch('a', 'result', { limitBytes: 1000 }).logs.map((l) => l.data)).toEqual(['r1', 'r2', 'r3']);
    expect(again.readBatch('a', 'status', { limitBytes: 1000 }).logs.map((l) => l.data)).toEqual(['s1']);
    expect(again.readBatch('b', 'result', { limitBytes: 1000 }).logs.map((l) => l.data)).toEqual(['other']);
    expect(again.readBatch('b', 'status', { limitBytes: 1000 }).logs).toEqual([]);
  });

  it('bounds batches by bytes, oldest first, always taking at least one log', () => {
    const b = new LogBuffer(db);
    b.append(
      'a',
      'result',
      Array.from({ length: 10 }, (_, i) => line(i)),
    );
    const first = b.readBatch('a', 'result', { limitBytes: 35 });
    expect(first.logs.map((l) => l.data)).toEqual([line(0), line(1), line(2)]);
    expect(first.bytes).toBe(30);
    expect(first.full).toBe(true);
    // Reading does not delete.
    expect(b.readBatch('a', 'result', { limitBytes: 35 }).logs.map((l) => l.data)).toEqual([line(0), line(1), line(2)]);
    // A log larger than the current limit but under the max still goes alone.
    const single = b.readBatch('a', 'result', { limitBytes: 5, maxLogBytes: 100 });
    expect(single.logs).toHaveLength(1);
    expect(single.full).toBe(true);
    const all = b.readBatch('a', 'result', { limitBytes: 1000 });
    expect(all.logs).toHaveLength(10);
    expect(all.full).toBe(false);
  });

  it('deletes only acknowledged ids (at-least-once)', () => {
    const b = new LogBuffer(db);
    b.append('a', 'result', ['1', '2', '3', '4']);
    const batch = b.readBatch('a', 'result', { limitBytes: 2 });
    expect(batch.logs.map((l) => l.data)).toEqual(['1', '2']);
    // New logs arrive while the batch is in flight.
    b.append('a', 'result', ['5']);
    expect(
      b.ack(
        'a',
        'result',
        batch.logs.map((l) => l.id),
      ),
    ).toBe(2);
    expect(
      b.ack(
        'a',
        'result',
        batch.logs.map((l) => l.id),
      ),
    ).toBe(0);
    expect(b.readBatch('a', 'result', { limitBytes: 100 }).logs.map((l) => l.data)).toEqual(['3', '4', '5']);
    // Ids of another registration or kind are not touched.
    b.append('z', 'status', ['zz']);
    const zid = b.readBatch('z', 'status', { limitBytes: 100 }).logs[0]!.id;
    expect(b.ack('a', 'result', [zid])).toBe(0);
    expect(b.stats('z', 'status').count).toBe(1);
    expect(b.stats('a', 'result')).toMatchObject({ count: 3, bytes: 3 });
  });

  it('drops a single log over the per-log maximum and counts it', () => {
    const b = new LogBuffer(db);
    b.append('a', 'result', ['small', 'x'.repeat(100), 'tail']);
    const batch = b.readBatch('a', 'result', { limitBytes: 1000, maxLogBytes: 50 });
    expect(batch.logs.map((l) => l.data)).toEqual(['small', 'tail']);
    expect(batch.droppedOversize).toBe(1);
    expect(b.stats('a', 'result')).toMatchObject({ count: 2, droppedOversize: 1, dropped: 1, droppedCap: 0 });
  });

  it('caps each buffer: the oldest are dropped first, counted and persisted', () => {
    const b = new LogBuffer(db, { cap: 5 });
    b.append(
      'a',
      'result',
      Array.from({ length: 4 }, (_, i) => line(i)),
    );
    b.append(
      'a',
      'result',
      Array.from({ length: 4 }, (_, i) => line(i + 4)),
    );
    b.append('a', 'status', ['s']);
    expect(b.readBatch('a', 'result', { limitBytes: 1000 }).logs.map((l) => l.data)).toEqual([3, 4, 5, 6, 7].map((i) => line(i)));
    expect(b.stats('a', 'result')).toMatchObject({ count: 5, droppedCap: 3, dropped: 3 });
    b.append(
      'a',
      'result',
      Array.from({ length: 12 }, (_, i) => line(100 + i)),
    );
    expect(b.readBatch('a', 'result', { limitBytes: 1000 }).logs.map((l) => l.data)).toEqual([107, 108, 109, 110, 111].map((i) => line(i)));
    db.close();
    db = openDatabase(path);
    const again = new LogBuffer(db, { cap: 5 });
    expect(again.stats('a', 'result')).toMatchObject({ count: 5, droppedCap: 15, bytes: 50 });
    expect(again.stats('a', 'status')).toMatchObject({ count: 1, droppedCap: 0 });
  });

  it('reports stats per registration: count, bytes, dropped, oldest age', () => {
    const b = new LogBuffer(db);
    expect(b.statsFor('a')).toEqual({
      status: { count: 0, bytes: 0, droppedCap: 0, droppedOversize: 0, dropped: 0, oldestAgeMs: undefined },
      result: { count: 0, bytes: 0, droppedCap: 0, droppedOversize: 0, dropped: 0, oldestAgeMs: undefined },
    });
    b.append('a', 'result', ['héllo']);
    const s = b.stats('a', 'result');
    expect(s.count).toBe(1);
    expect(s.bytes).toBe(6);
    expect(s.oldestAgeMs).toBeGreaterThanOrEqual(0);
    b.clear('a');
    expect(b.stats('a', 'result').count).toBe(0);
  });

  it('rejects unknown kinds', () => {
    const b = new LogBuffer(db);
    expect(() => b.append('a', 'health' as never, ['x'])).toThrow(/log kind/);
  });

  it('group-commits concurrent appends through LogAppendQueue', async () => {
    const b = new LogBuffer(db);
    const q = new LogAppendQueue(b);
    await Promise.all(Array.from({ length: 100 }, (_, i) => q.append([{ registrationId: 'a', kind: 'result', data: line(i) }])));
    expect(q.commits).toBe(1);
    expect(b.readBatch('a', 'result', { limitBytes: 10_000 }).logs.map((l) => l.data)).toEqual(
      Array.from({ length: 100 }, (_, i) => line(i)),
    );
    db.close();
    await expect(q.append([{ registrationId: 'a', kind: 'result', data: 'x' }])).rejects.toThrow();
  });

  // issue 14: per-log cost — no secondary index and no counter upsert per append.
  it('keeps each buffer in its own rowid table: no index, no counter row written per append', () => {
    const b = new LogBuffer(db);
    b.append('a', 'result', ['1', '2']);
    const indexes = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name LIKE 'log_buffer%' AND sql IS NOT NULL")
      .pluck()
      .all();
    expect(indexes).toEqual([]);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name IN ('log_buffer_entries', 'log_buffer_counters')").all()).toEqual([]);
    // Counts are in memory, rebuilt from the rows on reopen.
    db.close();
    db = openDatabase(path);
    expect(new LogBuffer(db).stats('a', 'result')).toMatchObject({ count: 2, bytes: 2 });
  });

  // issue 14: the schema change carries existing buffered logs over.
  it('migrates a version 1 database: every entry kept, in order, with its id and the dropped counters', () => {
    db.exec(`CREATE TABLE schema_versions (module TEXT PRIMARY KEY, version INTEGER NOT NULL);
      INSERT INTO schema_versions VALUES ('log_buffer', 1);
      CREATE TABLE log_buffer_entries (id INTEGER PRIMARY KEY AUTOINCREMENT, registration_id TEXT NOT NULL, kind TEXT NOT NULL,
        data TEXT NOT NULL, bytes INTEGER NOT NULL, created_at INTEGER NOT NULL);
      CREATE INDEX log_buffer_entries_fifo ON log_buffer_entries (registration_id, kind, id);
      CREATE TABLE log_buffer_counters (registration_id TEXT NOT NULL, kind TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0, dropped_cap INTEGER NOT NULL DEFAULT 0, dropped_oversize INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (registration_id, kind));`);
    const ins = db.prepare('INSERT INTO log_buffer_entries (registration_id, kind, data, bytes, created_at) VALUES (?, ?, ?, 1, ?)');
    const expected: Record<string, string[]> = { 'a/result': [], 'a/status': [], 'b/result': [] };
    for (let i = 0; i < 300; i++) {
      const key = (['a/result', 'a/status', 'b/result'] as const)[i % 3]!;
      const [r, k] = key.split('/') as [string, string];
      ins.run(r, k, `${key}-${i}`, 1000 + i);
      expected[key]!.push(`${key}-${i}`);
    }
    db.prepare(
      "INSERT INTO log_buffer_counters VALUES ('a', 'result', 100, 100, 7, 2), ('a', 'status', 100, 100, 0, 0), ('b', 'result', 100, 100, 0, 0), ('gone', 'status', 0, 0, 3, 0)",
    ).run();
    db.close();
    db = openDatabase(path);
    const b = new LogBuffer(db);
    for (const [key, lines] of Object.entries(expected)) {
      const [r, k] = key.split('/') as [string, 'result' | 'status'];
      const batch = b.readBatch(r, k, { limitBytes: 1_000_000 });
      expect(batch.logs.map((l) => l.data)).toEqual(lines);
      expect(batch.logs.map((l) => l.createdAt)).toEqual([...batch.logs.map((l) => l.createdAt)].sort((x, y) => x - y));
      expect(b.stats(r, k).count).toBe(100);
    }
    expect(b.stats('a', 'result')).toMatchObject({ droppedCap: 7, droppedOversize: 2 });
    expect(b.stats('gone', 'status')).toMatchObject({ count: 0, droppedCap: 3 });
    // New appends follow the carried-over ones; acks of carried-over ids work.
    b.append('a', 'result', ['new']);
    const all = b.readBatch('a', 'result', { limitBytes: 1_000_000 }).logs;
    expect(all.at(-1)!.data).toBe('new');
    expect(
      b.ack(
        'a',
        'result',
        all.slice(0, 10).map((l) => l.id),
      ),
    ).toBe(10);
    expect(b.stats('a', 'result').count).toBe(91);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name IN ('log_buffer_entries', 'log_buffer_counters')").all()).toEqual([]);
  });

  // issue 14: calls arriving while a commit is pending join the next transaction; each is answered after its commit.
  it('shares commits between calls that arrive while one is in progress', async () => {
    const b = new LogBuffer(db);
    const q = new LogAppendQueue(b);
    const first = Array.from({ length: 64 }, (_, i) => q.append([{ registrationId: 'a', kind: 'result', data: line(i) }]));
    await Promise.all(first);
    const committedAfterFirst = q.commits;
    // A wave per event-loop turn, several turns: far fewer commits than calls.
    const waves: Promise<void>[] = [];
    for (let w = 0; w < 8; w++) {
      for (let i = 0; i < 64; i++) waves.push(q.append([{ registrationId: 'a', kind: 'result', data: line(1000 + w * 64 + i) }]));
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(waves);
    expect(committedAfterFirst).toBe(1);
    expect(q.commits).toBeLessThanOrEqual(1 + 8);
    expect(b.stats('a', 'result').count).toBe(64 + 8 * 64);
    const data = b.readBatch('a', 'result', { limitBytes: 1_000_000 }).logs.map((l) => l.data);
    expect(data).toEqual([...Array.from({ length: 64 }, (_, i) => line(i)), ...Array.from({ length: 512 }, (_, i) => line(1000 + i))]);
  });

  // issue 13: a lock held by another connection refuses the batch after a bounded async retry; the event loop keeps turning.
  it('refuses appends while another connection holds the write lock, without blocking the event loop', async () => {
    const b = new LogBuffer(db);
    const q = new LogAppendQueue(b, { busyBudgetMs: 100 });
    const other = openDatabase(path);
    other.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    const refused = q.append([{ registrationId: 'a', kind: 'result', data: 'x' }]).then(
      () => 'ok',
      (err: Error) => err.message,
    );
    const outcome = await refused;
    clearInterval(ticker);
    expect(outcome).toMatch(/locked by another process/);
    expect(ticks).toBeGreaterThan(3);
    expect(b.stats('a', 'result').count).toBe(0);
    other.exec('COMMIT');
    other.close();
    await q.append([{ registrationId: 'a', kind: 'result', data: 'y' }]);
    expect(b.readBatch('a', 'result', { limitBytes: 100 }).logs.map((l) => l.data)).toEqual(['y']);
  });
});
