/**
 * WAL checkpoints off the event loop (ADR 0009, ADR 0023). With SQLite's
 * automatic checkpoint the commit that fills the WAL to 1000 pages copies
 * them into the database and fsyncs both files, on the event loop: measured
 * 35–100 ms per such commit here, every ~4 MiB of logs, and ~40% of ingest
 * time. The supervisor's connection turns the automatic checkpoint off and a
 * worker thread with its own connection runs PASSIVE checkpoints (they never
 * block writers or readers) whenever the WAL file has grown past
 * `thresholdBytes`. After a burst, one more PASSIVE checkpoint copies the
 * frames written during the last one as soon as writes pause; the next
 * commit then starts the WAL over in the file's first blocks
 * (journal_size_limit = the threshold keeps them, so the file grows past the
 * threshold again only with that much of new frames). Only when writes never
 * pause and the WAL reaches `maxWalBytes` does a RESTART checkpoint take the
 * write lock for the short tail; the supervisor's writers meeting it retry
 * asynchronously (busy.ts). Before (ADR 0009) a TRUNCATE followed every
 * PASSIVE checkpoint: under load the writers met its lock every ~4 MiB
 * (bench/thrift-peers: ~30 ms of retries each time), and every commit after
 * it extended the file again. The worker only stats the WAL file: it never
 * opens the -shm or the database itself besides its SQLite connection, as
 * closing such a descriptor would drop the POSIX locks of every connection
 * of the process.
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
const { statSync } = require('node:fs');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
let stopped = false;
parentPort.on('message', (m) => { if (m === 'stop') stopped = true; });
// Only stat, never open: closing any descriptor of the -shm (or the database) would drop every POSIX lock this
// process's connections hold on it (https://www.sqlite.org/howtocorrupt.html, section 2.2).
const wal = () => { try { const st = statSync(workerData.path + '-wal'); return { size: st.size, sig: st.size + ':' + st.mtimeMs }; } catch { return { size: 0, sig: '' }; } };
let last = wal();
let tail = false;
let lastWork = Date.now();
/** Run a checkpoint; true when it copied every frame back and no commit came meanwhile (the file is unchanged). */
function checkpoint(mode) {
  const before = wal().sig;
  try {
    const r = db.pragma('wal_checkpoint(' + mode + ')')[0];
    return r.busy === 0 && r.log === r.checkpointed && wal().sig === before;
  } catch { return false; /* the file went away or is locked: next tick */ }
}
function tick() {
  if (stopped || Date.now() - lastWork > workerData.idleExitMs) {
    // Leave an empty WAL behind (the main thread starts a worker again when it grows); nothing writes now.
    if (stopped || wal().size === 0 || checkpoint('TRUNCATE')) { db.close(); parentPort.close(); return; }
  }
  const w = wal();
  const grown = w.size !== last.size;
  const quiet = w.sig === last.sig;
  last = w;
  // A WAL that started over is written into the file's first blocks (journal_size_limit = the threshold keeps
  // them), so the file grows past the threshold only with that much of new frames.
  if ((grown && w.size >= workerData.thresholdBytes) || (tail && quiet)) {
    // PASSIVE: no lock, writers go on appending meanwhile. Once a checkpoint has copied every frame, the next
    // commit starts the WAL over from its beginning; so after a burst, the frames written during the last
    // checkpoint (the tail) are copied as soon as writes pause for a tick.
    tail = !checkpoint('PASSIVE');
    // Writes never paused (sustained load): once the WAL reaches maxWalBytes, a RESTART copies the short tail
    // under the write lock so the WAL starts over (writers meeting the lock retry asynchronously, busy.ts).
    if (tail && wal().size >= workerData.maxWalBytes) tail = !checkpoint('RESTART');
    last = wal();
    lastWork = Date.now();
  }
  setTimeout(tick, workerData.intervalMs);
}
tick();
`;

export interface CheckpointerOptions {
  /**
   * Checkpoint once the WAL file is this large; it is also the size the file is kept at (journal_size_limit)
   * when the WAL starts over, so its blocks are reused. Default 4 MiB (SQLite's own default is 1000 pages).
   */
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
  // The WAL's first blocks are reused when it starts over, not freed and allocated again (issue 14).
  db.pragma(`journal_size_limit = ${thresholdBytes}`);
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
