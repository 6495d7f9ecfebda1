/**
 * Giving space back (issue 19). Deleted logs leave free pages that SQLite
 * reuses for new rows, so the file stays at its high-water mark: after a
 * long outage filled the buffers to their byte cap and publishing drained
 * them, a 512 MiB file would stay 512 MiB for ever. The supervisor's
 * database uses `auto_vacuum = INCREMENTAL` (a file made before that is
 * converted once by VACUUM at open while small enough), and a timer hands
 * free pages back in small steps (`PRAGMA incremental_vacuum(N)`: a short
 * write transaction; when another process holds the lock it fails within
 * the 2 ms busy timeout and the next tick tries again).
 */
import { statSync } from 'node:fs';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { SqliteDatabase } from './database.js';

/** Files up to this size are converted to incremental auto-vacuum at open (a one-off VACUUM). */
export const VACUUM_AT_OPEN_MAX_BYTES = 256 * 1024 * 1024;

/** Make an existing database incremental-auto-vacuum (VACUUM once) when it is not yet and small enough. */
export function ensureIncrementalVacuum(db: SqliteDatabase, path: string, log: Logger): void {
  if ((db.pragma('auto_vacuum', { simple: true }) as number) === 2) return;
  let size = 0;
  try {
    size = statSync(path).size;
  } catch {
    size = 0;
  }
  if (size > VACUUM_AT_OPEN_MAX_BYTES) {
    log.warn({ path, bytes: size }, 'database too large to convert to incremental vacuum at open; free pages are reused but not returned');
    return;
  }
  db.pragma('auto_vacuum = INCREMENTAL');
  db.exec('VACUUM');
  log.info({ path, bytes: size }, 'database converted to incremental auto-vacuum');
}

export interface ReclaimOptions {
  /** Check every this many ms. Default 1000. */
  intervalMs?: number;
  /** Start giving pages back once this many bytes are free. Default 4 MiB. */
  thresholdBytes?: number;
  /** Pages given back per step. Default 512 (2 MiB at 4 KiB pages). */
  pagesPerStep?: number;
}

/** Start the timer; returns a function that stops it. `db` may be a watched proxy. */
export function startReclaimer(db: SqliteDatabase, log: Logger, o: ReclaimOptions = {}): () => void {
  const threshold = o.thresholdBytes ?? 4 * 1024 * 1024;
  const pages = o.pagesPerStep ?? 512;
  let warned = false;
  const timer = setInterval(() => {
    try {
      if (!db.open) return;
      const free = (db.pragma('freelist_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number);
      if (free >= threshold) db.pragma(`incremental_vacuum(${pages})`);
      warned = false;
    } catch (err) {
      if (!warned) log.debug({ err: errorMessage(err) }, 'incremental vacuum skipped; retried on the next tick');
      warned = true;
    }
  }, o.intervalMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}
