/**
 * WAL checkpoints off the event loop (ADR 0009). With SQLite's automatic
 * checkpoint the commit that fills the WAL to 1000 pages copies them into
 * the database and fsyncs both files, on the event loop: measured 35–100 ms
 * per such commit here, every ~4 MiB of logs, and ~40% of ingest time. The
 * supervisor's connection turns the automatic checkpoint off and a worker
 * thread with its own connection runs PASSIVE checkpoints (they never block
 * writers or readers) whenever the WAL passes `thresholdBytes`. If the worker
 * dies, the automatic checkpoint is turned back on, so the WAL stays bounded.
 */
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
parentPort.on('message', (m) => { if (m === 'stop') { stopped = true; } });
function walBytes() { try { return statSync(workerData.path + '-wal').size; } catch { return 0; } }
let last = 0;
function tick() {
  if (stopped) { db.close(); parentPort.close(); return; }
  const size = walBytes();
  // The WAL file keeps its size after a reset: checkpoint when it grew or is large and was not checkpointed yet.
  if (size >= workerData.thresholdBytes && size !== last) {
    try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { /* the file went away or is locked: try again next tick */ }
    last = size;
  }
  setTimeout(tick, workerData.intervalMs);
}
tick();
`;

export interface CheckpointerOptions {
  /** Checkpoint once the WAL file is this large. Default 4 MiB (SQLite's own default is 1000 pages). */
  thresholdBytes?: number;
  /** How often the worker looks at the WAL's size (ms). Default 50. */
  intervalMs?: number;
  /** Told when the worker failed (the automatic checkpoint is back on by then). */
  onError?: (err: Error) => void;
}

export interface Checkpointer {
  stop(): Promise<void>;
}

/** Move `db`'s checkpoints (a file database in WAL mode) to a worker thread. */
export function startCheckpointer(db: SqliteDatabase, path: string, o: CheckpointerOptions = {}): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { path, driver, thresholdBytes: o.thresholdBytes ?? 4 * 1024 * 1024, intervalMs: o.intervalMs ?? 50 },
  });
  worker.unref();
  db.pragma('wal_autocheckpoint = 0');
  db.pragma(`journal_size_limit = ${16 * 1024 * 1024}`);
  let stopping = false;
  const restoreAuto = (): void => {
    if (db.open) db.pragma('wal_autocheckpoint = 1000');
  };
  worker.on('error', (err) => {
    restoreAuto();
    o.onError?.(err);
  });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  void exited.then(() => {
    if (!stopping) restoreAuto();
  });
  return {
    async stop(): Promise<void> {
      if (stopping) return exited;
      stopping = true;
      worker.postMessage('stop');
      const timer = setTimeout(() => void worker.terminate(), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}
