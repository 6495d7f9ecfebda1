/**
 * WAL checkpoints off the event loop (ADR 0009). With SQLite's automatic
 * checkpoint the commit that fills the WAL to 1000 pages copies them into
 * the database and fsyncs both files, on the event loop: measured 35–100 ms
 * per such commit here, every ~4 MiB of logs, and ~40% of ingest time. The
 * supervisor's connection turns the automatic checkpoint off and a worker
 * thread with its own connection runs PASSIVE checkpoints (they never block
 * writers or readers) while the WAL passes `thresholdBytes`, then a TRUNCATE
 * checkpoint for the frames written meanwhile: it holds the write lock for
 * that short tail, and the supervisor's writers meeting it retry
 * asynchronously (busy.ts) instead of waiting on the event loop.
 *
 * The worker costs ~10 MB of RSS, so it exists only while there is work: the
 * main thread looks at the WAL's size on a timer (a stat), starts the worker
 * when it passes the threshold, and the worker exits after `idleExitMs`
 * without a checkpoint. The WAL is truncated by each checkpoint, so its size
 * is what is waiting to be checkpointed.
 * If the worker fails, the automatic checkpoint is turned back on.
 */
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { SqliteDatabase } from './database.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { statSync } = require('node:fs');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
let stopped = false;
parentPort.on('message', (m) => { if (m === 'stop') stopped = true; });
const walBytes = () => { try { return statSync(workerData.path + '-wal').size; } catch { return 0; } };
let last = -1;
let lastWork = Date.now();
function tick() {
  if (stopped || Date.now() - lastWork > workerData.idleExitMs) { db.close(); parentPort.close(); return; }
  const size = walBytes();
  if (size >= workerData.thresholdBytes && size !== last) {
    try {
      // The bulk without any lock, then the few frames written meanwhile under the write lock, so the WAL restarts
      // (writers keep appending during a PASSIVE checkpoint, so alone it never lets the WAL reset under load).
      db.pragma('wal_checkpoint(PASSIVE)');
      db.pragma('wal_checkpoint(TRUNCATE)');
    } catch { /* the file went away or is locked: next tick */ }
    last = size;
    lastWork = Date.now();
  }
  setTimeout(tick, workerData.intervalMs);
}
tick();
`;

export interface CheckpointerOptions {
  /** Checkpoint once the WAL file is this large. Default 4 MiB (SQLite's own default is 1000 pages). */
  thresholdBytes?: number;
  /** How often the WAL's size is looked at (ms), by the main thread and by the worker. Default 50. */
  intervalMs?: number;
  /** The worker exits after this long without a checkpoint (ms). Default 10 s. */
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
  db.pragma('wal_autocheckpoint = 0');
  db.pragma('journal_size_limit = 0');
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
        workerData: { path, driver, thresholdBytes, intervalMs, idleExitMs: o.idleExitMs ?? 10_000 },
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
