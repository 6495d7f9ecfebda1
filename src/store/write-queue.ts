/**
 * Ordered writes that survive another process's lock (issue 13, ADR 0009):
 * run history, node keys, cached configs and registrations. A write runs at
 * once when nothing waits; one that meets a lock is queued, and so is every
 * write after it (order is kept), and the queue retries them asynchronously
 * with backoff, each for at most `budgetMs` from when it was made. The event
 * loop never waits: callers get a promise (already handled: ignoring it is
 * safe), and a write that gives up rejects it with a clear E_STORE error and
 * is reported to `onError`.
 */
import { backoffDelay, busyError, isBusy, sleep } from './busy.js';
import type { SqliteDatabase } from './database.js';

export const DEFAULT_WRITE_BUDGET_MS = 60_000;

interface Queued {
  what: string;
  fn: () => void;
  since: number;
  attempts: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class WriteQueue {
  budgetMs = DEFAULT_WRITE_BUDGET_MS;
  /** Told of every write that was given up (the app logs it). */
  onError: ((what: string, err: unknown) => void) | undefined;
  private readonly queue: Queued[] = [];
  private draining = false;

  /** Writes waiting for a lock to go. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Run `fn` (a synchronous write) now, or after the writes already waiting.
   * An immediate attempt that fails for another reason than a lock throws.
   */
  run(what: string, fn: () => void): Promise<void> {
    if (this.queue.length === 0) {
      try {
        fn();
        return Promise.resolve();
      } catch (err) {
        if (!isBusy(err)) throw err;
      }
    }
    const p = new Promise<void>((resolve, reject) => this.queue.push({ what, fn, since: Date.now(), attempts: 1, resolve, reject }));
    p.catch(() => undefined);
    void this.drain();
    return p;
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const w = this.queue[0]!;
        await sleep(backoffDelay(w.attempts, { budgetMs: this.budgetMs }));
        w.attempts++;
        try {
          w.fn();
        } catch (err) {
          const waited = Date.now() - w.since;
          if (isBusy(err) && waited < this.budgetMs) continue;
          this.queue.shift();
          const e = isBusy(err) ? busyError(w.what, w.attempts, waited, err) : err;
          this.onError?.(w.what, e);
          w.reject(e);
          continue;
        }
        this.queue.shift();
        w.resolve();
      }
    } finally {
      this.draining = false;
    }
  }
}

const queues = new WeakMap<object, WriteQueue>();

/** The write queue of `db` (one per database value, shared by every store on it). */
export function writesOf(db: SqliteDatabase): WriteQueue {
  let q = queues.get(db);
  if (!q) {
    q = new WriteQueue();
    queues.set(db, q);
  }
  return q;
}
