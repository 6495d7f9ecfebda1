/**
 * Durable log ingest, the store's part (issue 14): lines/s of 1 KiB logs
 * made durable in SQLite (WAL, synchronous=NORMAL), each measured on a fresh
 * database file, the three alternated in one run (A B C A B C ...):
 *
 * - raw_floor: better-sqlite3 alone, one row per transaction, no project code
 *   (the floor the issue's "implied limit" is built from).
 * - sequential: the project's durable append (LogAppendQueue → LogBuffer on
 *   the supervisor's database, checkpoints in a worker thread),
 *   one log per call, each call awaiting its own commit, as the logger
 *   plugin answers osqueryd's one-call-at-a-time logString.
 * - concurrent_64: 64 appenders in flight sharing commits (group commit).
 * - raw_batched_64: better-sqlite3 alone, 64 rows per transaction (what
 *   each of concurrent_64's shared commits holds), default checkpointing.
 * - v1_schema_sequential: for reference, the statements the buffer ran per
 *   log before issue 14 (an insert into one entries table with a secondary
 *   FIFO index, then an upsert with RETURNING on a counters row), one log
 *   per transaction, raw better-sqlite3.
 *
 * The end-to-end logString over the extension socket (Thrift) is measured by
 * the Thrift benches; sequential/raw_floor here is the store's share of it.
 *
 * Run: node dist/bench/store-ingest.js
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LogAppendQueue } from '../src/store/log-append-queue.js';
import { LogBuffer } from '../src/store/log-buffer.js';
import { openWatchedDatabase } from '../src/store/watched-database.js';
import { median, round, writeResult } from './lib.js';

const ROUNDS = 5;
const LINE_BYTES = 1024;
const SEQUENTIAL_LINES = 10_000;
const CONCURRENT_LINES = 100_000;
const IN_FLIGHT = 64;

const line = (i: number): string => `{"seq":${i},"pad":"${'x'.repeat(LINE_BYTES - 20 - String(i).length)}"}`;

async function inTempDir<T>(fn: (path: string) => Promise<T> | T): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'si-'));
  try {
    return await fn(join(dir, 'b.db'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** better-sqlite3 alone, `perTx` rows per transaction (perTx 1: the floor; 64: what concurrent_64's commits hold). */
function rawFloor(lines: string[], perTx = 1): Promise<number> {
  return inTempDir((path) => {
    const db = new Database(path);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, data TEXT NOT NULL)');
      const insert = db.prepare('INSERT INTO t (data) VALUES (?)');
      const tx = db.transaction((batch: string[]) => {
        for (const data of batch) insert.run(data);
      });
      const t = performance.now();
      for (let i = 0; i < lines.length; i += perTx) tx(lines.slice(i, i + perTx));
      return lines.length / ((performance.now() - t) / 1000);
    } finally {
      db.close();
    }
  });
}

const V1_SCHEMA = `CREATE TABLE e (id INTEGER PRIMARY KEY AUTOINCREMENT, registration_id TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL, bytes INTEGER NOT NULL, created_at INTEGER NOT NULL);
  CREATE INDEX e_fifo ON e (registration_id, kind, id);
  CREATE TABLE c (registration_id TEXT NOT NULL, kind TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (registration_id, kind))`;

function v1Schema(lines: string[]): Promise<number> {
  return inTempDir((path) => {
    const db = new Database(path);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(V1_SCHEMA);
      const insert = db.prepare('INSERT INTO e (registration_id, kind, data, bytes, created_at) VALUES (?, ?, ?, ?, ?)');
      const bump = db.prepare(
        `INSERT INTO c (registration_id, kind, count, bytes) VALUES (?, ?, 1, ?)
         ON CONFLICT(registration_id, kind) DO UPDATE SET count = count + 1, bytes = bytes + excluded.bytes RETURNING count`,
      );
      const tx = db.transaction((data: string) => {
        const bytes = Buffer.byteLength(data, 'utf8');
        insert.run('bench', 'result', data, bytes, Date.now());
        bump.get('bench', 'result', bytes);
      });
      const t = performance.now();
      for (const l of lines) tx(l);
      return lines.length / ((performance.now() - t) / 1000);
    } finally {
      db.close();
    }
  });
}

async function project(lines: string[], inFlight: number): Promise<{ rate: number; commits: number }> {
  return inTempDir(async (path) => {
    const watched = openWatchedDatabase(path);
    const db = watched.db;
    try {
      const buffer = new LogBuffer(db, { cap: lines.length });
      const queue = new LogAppendQueue(buffer);
      let next = 0;
      const t = performance.now();
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < lines.length) await queue.append([{ registrationId: 'bench', kind: 'result', data: lines[next++]! }]);
        }),
      );
      const rate = lines.length / ((performance.now() - t) / 1000);
      if (buffer.stats('bench', 'result').count !== lines.length) throw new Error('lost lines');
      return { rate, commits: queue.commits };
    } finally {
      await watched.close();
    }
  });
}

async function main(): Promise<void> {
  const seqLines = Array.from({ length: SEQUENTIAL_LINES }, (_, i) => line(i));
  const conLines = Array.from({ length: CONCURRENT_LINES }, (_, i) => line(i));
  const floor: number[] = [];
  const sequential: number[] = [];
  const concurrent: number[] = [];
  const ratios: number[] = [];
  const v1: number[] = [];
  const batched: number[] = [];
  const batchedRatios: number[] = [];
  const v1Ratios: number[] = [];
  let commits = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const f = await rawFloor(seqLines);
    const s = (await project(seqLines, 1)).rate;
    const c = await project(conLines, IN_FLIGHT);
    const old = await v1Schema(seqLines);
    const rb = await rawFloor(conLines, IN_FLIGHT);
    batched.push(rb);
    batchedRatios.push(c.rate / rb);
    v1.push(old);
    v1Ratios.push(old / f);
    floor.push(f);
    sequential.push(s);
    concurrent.push(c.rate);
    ratios.push(s / f);
    commits = c.commits;
    console.log(
      `round ${r + 1}: raw_floor ${Math.round(f)}/s, sequential ${Math.round(s)}/s (${round(s / f, 2)}x), concurrent_${IN_FLIGHT} ${Math.round(c.rate)}/s (${c.commits} commits), v1_schema ${Math.round(old)}/s (${round(old / f, 2)}x), raw_batched_${IN_FLIGHT} ${Math.round(rb)}/s`,
    );
  }
  const file = writeResult('store-ingest', {
    line_bytes: LINE_BYTES,
    rounds: ROUNDS,
    lines: { sequential: SEQUENTIAL_LINES, concurrent: CONCURRENT_LINES },
    raw_floor_lines_per_s: Math.round(median(floor)),
    sequential_lines_per_s: Math.round(median(sequential)),
    sequential_over_raw_floor: round(median(ratios), 3),
    [`concurrent_${IN_FLIGHT}_lines_per_s`]: Math.round(median(concurrent)),
    [`concurrent_${IN_FLIGHT}_commits_last_round`]: commits,
    [`raw_batched_${IN_FLIGHT}_lines_per_s`]: Math.round(median(batched)),
    [`concurrent_${IN_FLIGHT}_over_raw_batched`]: round(median(batchedRatios), 3),
    v1_schema_sequential_lines_per_s: Math.round(median(v1)),
    v1_schema_over_raw_floor: round(median(v1Ratios), 3),
    targets: { sequential_over_implied_limit: 0.8, concurrent_64_lines_per_s: 80_000 },
    note: 'raw_floor: better-sqlite3 alone, one 1 KiB row per transaction (WAL, synchronous=NORMAL); sequential: LogAppendQueue+LogBuffer, one log per commit; alternated in one run, medians',
  });
  console.log(`wrote ${file}`);
}

await main();
