/**
 * WAL checkpoints off the event loop (ADR 0009, ADR 0023). With SQLite's
 * automatic checkpoint the commit that fills the WAL to 1000 pages copies
 * them into the database and fsyncs both files, on the event loop: measured
 * 35–100 ms per such commit here, every ~4 MiB of logs, and ~40% of ingest
 * time. The supervisor's connection turns the automatic checkpoint off and a
 * worker thread with its own connection runs PASSIVE checkpoints (they never
 * block writers or readers) once `thresholdBytes` of the WAL wait to be
 * copied back (read from the wal-index in the -shm file). After a burst, one
 * more PASSIVE checkpoint copies the frames written during the last one once
 * writes pause; the next commit then starts the WAL over in the file's own
 * blocks (journal_size_limit keeps them). Only when writes never pause and
 * the WAL holds `maxWalBytes` does a RESTART checkpoint take the write lock
 * for the short tail; the supervisor's writers meeting it retry
 * asynchronously (busy.ts). Before (ADR 0009) a TRUNCATE followed every
 * PASSIVE checkpoint: writers met its lock every ~4 MiB under load (30 ms
 * of retries on average), and every commit after it extended the file again.
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
const { closeSync, openSync, readSync, statSync } = require('node:fs');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
let stopped = false;
parentPort.on('message', (m) => { if (m === 'stop') stopped = true; });
const walBytes = () => { try { return statSync(workerData.path + '-wal').size; } catch { return 0; } };
// The wal-index header in the -shm file (https://www.sqlite.org/walformat.html, native byte order): the page
// size (u16 at 14), the last valid frame mxFrame (u32 at 16) and the frames already copied back nBackfill (u32
// at 96). An unlocked read: a torn value only moves one decision by a tick.
const hdr = Buffer.alloc(100);
const le = require('node:os').endianness() === 'LE';
function walIndex() {
  let fd;
  try {
    fd = openSync(workerData.path + '-shm', 'r');
    if (readSync(fd, hdr, 0, 100, 0) < 100) return undefined;
  } catch { return undefined; } finally { if (fd !== undefined) closeSync(fd); }
  const page = le ? hdr.readUInt16LE(14) : hdr.readUInt16BE(14);
  const mx = le ? hdr.readUInt32LE(16) : hdr.readUInt32BE(16);
  const backfill = le ? hdr.readUInt32LE(96) : hdr.readUInt32BE(96);
  const frame = (page === 1 ? 65536 : page) + 24;
  return { mx, walBytes: mx * frame, pendingBytes: Math.max(0, mx - backfill) * frame };
}
let lastMx = -1;
let tail = false;
let lastWork = Date.now();
/** Run a checkpoint; true when every frame is copied back now (commits made meanwhile included). */
function checkpoint(mode) {
  try {
    const r = db.pragma('wal_checkpoint(' + mode + ')')[0];
    if (r.busy !== 0 || r.log !== r.checkpointed) return false;
    const w = walIndex();
    return w !== undefined && w.pendingBytes === 0;
  } catch { return false; /* the file went away or is locked: next tick */ }
}
function tick() {
  const idle = Date.now() - lastWork > workerData.idleExitMs;
  if (stopped || idle) {
    // Leave an empty WAL behind (the main thread starts a worker again when it grows); nothing writes now.
    if (stopped || walBytes() === 0 || checkpoint('TRUNCATE')) { db.close(); parentPort.close(); return; }
  }
  const w = walIndex();
  const pending = w ? w.pendingBytes : walBytes();
  const quiet = w !== undefined && w.mx === lastMx;
  if (pending >= workerData.thresholdBytes || (tail && quiet && pending > 0)) {
    // PASSIVE: no lock, writers go on appending meanwhile. Once a checkpoint has copied every frame, the next
    // commit starts the WAL over from its beginning, in the file's existing blocks (journal_size_limit keeps
    // them): so after a burst the frames written during the last checkpoint are copied once writes pause.
    tail = !checkpoint('PASSIVE');
    // Writes never paused long enough (sustained load): once the WAL holds maxWalBytes of frames, a RESTART copies
    // the short tail under the write lock so the WAL starts over (writers meeting it retry asynchronously, busy.ts).
    if (tail && (walIndex()?.walBytes ?? walBytes()) >= workerData.maxWalBytes) tail = !checkpoint('RESTART');
    lastWork = Date.now();
  }
  if (w) lastMx = w.mx;
  setTimeout(tick, workerData.intervalMs);
}
tick();
`;

export interface CheckpointerOptions {
  /** Checkpoint once this much of the WAL is not yet copied back. Default 4 MiB (SQLite's own default is 1000 pages). */
  thresholdBytes?: number;
  /**
   * The WAL file may grow to this size while writes never pause long enough for a PASSIVE checkpoint to finish
   * (sustained load); past it one RESTART checkpoint holds the write lock briefly. It is also the size the
   * file is kept at (journal_size_limit) between checkpoints. Default 64 MiB.
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
  // The WAL's blocks are reused when it starts over, not freed and allocated again (issue 14).
  db.pragma(`journal_size_limit = ${maxWalBytes}`);
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
        workerData: { path, driver, thresholdBytes, maxWalBytes, intervalMs, idleExitMs: o.idleExitMs ?? 10_000 },
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
