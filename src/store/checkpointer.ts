/**
 * WAL checkpoints off the event loop (ADR 0009, ADR 0023). With SQLite's
 * automatic checkpoint the commit that fills the WAL to 1000 pages copies
 * them into the database and fsyncs both files, on the event loop: measured
 * 35–100 ms per such commit here, every ~4 MiB of logs, and ~40% of ingest
 * time. The supervisor's connection turns the automatic checkpoint off and a
 * worker thread with its own connection runs PASSIVE checkpoints (they never
 * block writers or readers) once `thresholdBytes` of frames wait to be copied
 * back (counted from the WAL file's frame headers). After a burst, one more
 * PASSIVE checkpoint copies the frames written during the last one as soon
 * as writes pause for a tick; the next commit then starts the WAL over in
 * the file's own blocks (journal_size_limit = -1: never truncated on the
 * event loop). Only when writes never pause and the WAL holds `maxWalBytes`
 * does a RESTART checkpoint take the write lock for the short tail; the
 * supervisor's writers meeting it retry asynchronously (busy.ts).
 *
 * Before (ADR 0009) a TRUNCATE followed every PASSIVE checkpoint: under load
 * the writers met its lock every ~4 MiB (bench/thrift-peers: ~30 ms of
 * retries each time), and every commit after it extended the file again.
 *
 * The worker costs ~10 MB of RSS, so it exists only while there is work: the
 * main thread looks at the WAL's size on a timer (a stat), starts the worker
 * when it passes the threshold, and the worker, after `idleExitMs` without a
 * checkpoint, truncates the WAL (nothing writes then) and exits: without a
 * worker the WAL file's size is what is waiting to be checkpointed.
 * If the worker fails, the automatic checkpoint is turned back on.
 */
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { SqliteDatabase } from './database.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { closeSync, fstatSync, openSync, readSync } = require('node:fs');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
const frameBytes = db.pragma('page_size', { simple: true }) + 24;
// From here on only checkpoints run. A RESTART or TRUNCATE takes the write lock first and then waits, with this
// busy handler, for readers still using the WAL: a reader in another process (an operator's sqlite3 shell, a
// backup tool) holding its transaction for seconds kept the supervisor's writers locked out for a whole second per
// checkpoint, past their retry budget (log appends refused). A few ms only: such a checkpoint that cannot finish
// gives up and is tried again on a later tick.
db.pragma('busy_timeout = ' + workerData.lockWaitMs);
let stopped = false;
parentPort.on('message', (m) => { if (m === 'stop') stopped = true; });
const hdr = Buffer.alloc(32);
/**
 * The WAL now (https://www.sqlite.org/walformat.html): its file size, its generation (the header's salts, new each
 * time the WAL starts over) and how many frames that generation has written: frames carry their generation's
 * salts, so a binary search over the frame headers finds the first stale one (~15 reads of 24 bytes). Only the
 * -wal is opened: SQLite holds no POSIX lock on it, while closing a descriptor of the -shm or the database would
 * drop every lock this process's connections hold there (https://www.sqlite.org/howtocorrupt.html, 2.2).
 */
function wal() {
  let fd;
  try {
    fd = openSync(workerData.path + '-wal', 'r');
    const size = fstatSync(fd).size;
    if (size < 32 || readSync(fd, hdr, 0, 32, 0) < 32) return { size, gen: '', frames: 0 };
    const s1 = hdr.readUInt32BE(16);
    const s2 = hdr.readUInt32BE(20);
    const fh = Buffer.alloc(16);
    const current = (i) => readSync(fd, fh, 0, 16, 32 + i * frameBytes) === 16 && fh.readUInt32BE(8) === s1 && fh.readUInt32BE(12) === s2;
    let lo = 0;
    let hi = Math.floor((size - 32) / frameBytes);
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (current(mid)) lo = mid + 1; else hi = mid; }
    return { size, gen: s1 + ':' + s2, frames: lo };
  } catch { return { size: 0, gen: '', frames: 0 }; } finally { if (fd !== undefined) closeSync(fd); }
}
let last = wal();
/** Frames of generation done.gen copied back by the last checkpoint. */
let done = { gen: '', frames: 0 };
let lastWork = Date.now();
/** The last checkpoint left frames behind (commits came during it): copy those once writes pause for a tick. */
let tail = false;
/** Run a checkpoint; true when every frame written so far is copied back (the next commit starts the WAL over). */
function checkpoint(mode) {
  try {
    const gen = wal().gen;
    const r = db.pragma('wal_checkpoint(' + mode + ')')[0];
    const w = wal();
    // A WAL that started over meanwhile had every frame of the old generation copied back; the new one's wait.
    done = { gen, frames: r.checkpointed };
    return r.busy === 0 && w.gen === gen && r.checkpointed === w.frames;
  } catch { return false; /* the file went away or is locked: next tick */ }
}
const pendingFrames = (w) => w.frames - (w.gen === done.gen ? done.frames : 0);
function tick() {
  if (stopped || Date.now() - lastWork > workerData.idleExitMs) {
    // Leave an empty WAL behind (the main thread starts a worker again when it grows); nothing writes now.
    if (stopped || wal().size === 0 || (checkpoint('TRUNCATE') && wal().size === 0)) { db.close(); parentPort.close(); return; }
  }
  const w = wal();
  const pending = pendingFrames(w);
  const quiet = w.gen === last.gen && w.frames === last.frames;
  last = w;
  // PASSIVE (no lock; writers go on appending meanwhile) once thresholdBytes of frames wait; and, when that left
  // a tail (frames written during it), for the tail as soon as writes pause for a tick: once every frame is copied
  // back, the next commit starts the WAL over from its beginning, in the file's own blocks. Only the tail: under
  // a trickle of commits (a few osqueryds logging every second) a checkpoint at every pause copied and fsynced
  // each commit, and the worker never went idle (ADR 0023, changelog).
  if (pending * frameBytes >= workerData.thresholdBytes || (tail && pending > 0 && quiet)) {
    let complete = checkpoint('PASSIVE');
    // Writes never paused (sustained load): once the WAL holds maxWalBytes, a RESTART copies the short tail
    // under the write lock so the WAL starts over (writers meeting the lock retry asynchronously, busy.ts).
    if (!complete && wal().frames * frameBytes >= workerData.maxWalBytes) complete = checkpoint('RESTART');
    tail = !complete;
    last = wal();
    lastWork = Date.now();
  }
  setTimeout(tick, workerData.intervalMs);
}
tick();
`;

/** The worker's busy timeout once it only checkpoints: its longest wait for a reader while it holds the write lock. */
const LOCK_WAIT_MS = 5;

export interface CheckpointerOptions {
  /** Checkpoint once this much of the WAL waits to be copied back. Default 4 MiB (SQLite's own default is 1000 pages). */
  thresholdBytes?: number;
  /**
   * The WAL file may grow to this size while writes never pause long enough for a PASSIVE checkpoint to
   * finish (sustained load); past it one RESTART checkpoint holds the write lock briefly. Default 64 MiB.
   */
  maxWalBytes?: number;
  /** How often the WAL's size is looked at (ms), by the main thread and by the worker. Default 50. */
  intervalMs?: number;
  /** The worker exits after this long without a checkpoint (ms), leaving an empty WAL. Default 10 s. */
  idleExitMs?: number;
  /** Told when the worker failed (the automatic checkpoint is back on by then). */
  onError?: (err: unknown) => void;
}

export interface Checkpointer {
  /** Whether a worker is running now. */
  readonly active: boolean;
  stop(): Promise<void>;
}

/** Move `db`'s checkpoints (a file database in WAL mode at `path`) to an on-demand worker thread. */
export function startCheckpointer(db: SqliteDatabase, path: string, o: CheckpointerOptions = {}): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const thresholdBytes = o.thresholdBytes ?? 4 * 1024 * 1024;
  const intervalMs = o.intervalMs ?? 50;
  const maxWalBytes = Math.max(thresholdBytes, o.maxWalBytes ?? 64 * 1024 * 1024);
  db.pragma('wal_autocheckpoint = 0');
  // When the WAL starts over, its blocks are written into again, not freed (an ftruncate of a WAL of tens of MiB
  // on the event loop took 16–22 ms) and allocated again; the worker truncates it once idle (issue 14).
  db.pragma('journal_size_limit = -1');
  let worker: Worker | undefined;
  let exited: Promise<void> = Promise.resolve();
  let failed = false;
  let stopping = false;

  const fallBack = (err: unknown): void => {
    if (failed) return;
    failed = true;
    if (db.open) db.pragma('wal_autocheckpoint = 1000');
    o.onError?.(err);
  };

  const spawn = (): void => {
    try {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { path, driver, thresholdBytes, maxWalBytes, intervalMs, idleExitMs: o.idleExitMs ?? 10_000, lockWaitMs: LOCK_WAIT_MS },
      });
      w.unref();
      w.on('error', fallBack);
      worker = w;
      exited = new Promise<void>((resolve) =>
        w.once('exit', () => {
          if (worker === w) worker = undefined;
          resolve();
        }),
      );
    } catch (err) {
      fallBack(err);
    }
  };

  const walBytes = (): number => {
    try {
      return statSync(`${path}-wal`).size;
    } catch {
      return 0;
    }
  };

  const timer = setInterval(() => {
    if (!worker && !failed && !stopping && walBytes() >= thresholdBytes) spawn();
  }, intervalMs);
  timer.unref();

  return {
    get active() {
      return worker !== undefined;
    },
    async stop(): Promise<void> {
      stopping = true;
      clearInterval(timer);
      const w = worker;
      if (!w) return;
      w.postMessage('stop');
      const kill = setTimeout(() => void w.terminate(), 2000);
      await exited;
      clearTimeout(kill);
    },
  };
}
