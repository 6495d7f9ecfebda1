/**
 * Group commit for log appends: appends that arrive while no commit runs are
 * written together in one transaction on the next turn of the event loop;
 * appends that arrive while a commit is retrying join the next transaction.
 * Each caller's promise settles only after the transaction holding its rows
 * committed, so the logger plugin never acknowledges a log to osqueryd that
 * is not on disk, while concurrent appends share one commit.
 *
 * A commit that meets another process's lock is retried asynchronously
 * (busy.ts) for at most `busyBudgetMs`, then its callers are refused: osqueryd
 * gets an error status for those logs instead of every tenant's extension
 * and the control API stalling behind a synchronous wait (issue 13).
 */
import { isBusy, retryBusy } from './busy.js';
import type { LogAppend, LogBuffer } from './log-buffer.js';

interface Call {
  entries: readonly LogAppend[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export const DEFAULT_LOG_BUSY_BUDGET_MS = 250;

export class LogAppendQueue {
  private readonly buffer: LogBuffer;
  private readonly maxBatch: number;
  private readonly busyBudgetMs: number;
  private pending: Call[] = [];
  private draining = false;
  private _commits = 0;

  constructor(buffer: LogBuffer, options: { maxBatch?: number; busyBudgetMs?: number } = {}) {
    this.buffer = buffer;
    this.maxBatch = options.maxBatch ?? 10_000;
    this.busyBudgetMs = options.busyBudgetMs ?? DEFAULT_LOG_BUSY_BUDGET_MS;
  }

  /** Transactions committed so far. */
  get commits(): number {
    return this._commits;
  }

  append(entries: readonly LogAppend[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      // setImmediate, not a timer: the commit runs in the same event-loop turn, right after the I/O callbacks
      // that delivered this call and any others that arrived with it, so a lone call waits for nothing and
      // concurrent ones share the commit.
      if (this.pending.length === 0 && !this.draining) setImmediate(this.drainSoon);
      this.pending.push({ entries, resolve, reject });
    });
  }

  private readonly drainSoon = (): void => this.drain();

  /**
   * Commit batches until none is pending, synchronously while each commit
   * succeeds at once (issue 14: no promise per commit on the ingest path). A
   * batch that meets another process's lock goes to the asynchronous retry
   * loop, and calls arriving meanwhile wait for it.
   */
  private drain(): void {
    if (this.draining) return;
    while (this.pending.length > 0) {
      const calls = this.take();
      const entries = calls.length === 1 ? calls[0]!.entries : calls.flatMap((c) => c.entries);
      try {
        this.buffer.appendMany(entries);
      } catch (err) {
        if (isBusy(err)) {
          void this.retry(calls, entries);
          return;
        }
        for (const c of calls) c.reject(err);
        continue;
      }
      this._commits++;
      for (const c of calls) c.resolve();
    }
  }

  /** Retry a batch that met a lock, for at most busyBudgetMs; then go on with what arrived meanwhile. */
  private async retry(calls: Call[], entries: readonly LogAppend[]): Promise<void> {
    this.draining = true;
    try {
      await retryBusy(`buffering ${entries.length} log(s)`, () => this.buffer.appendMany(entries), { budgetMs: this.busyBudgetMs });
      this._commits++;
      for (const c of calls) c.resolve();
    } catch (err) {
      for (const c of calls) c.reject(err);
    } finally {
      this.draining = false;
    }
    this.drain();
  }

  /** The oldest pending calls, whole, up to maxBatch entries (at least one call); the rest stays pending. */
  private take(): Call[] {
    let n = 0;
    let i = 0;
    while (i < this.pending.length && (i === 0 || n + this.pending[i]!.entries.length <= this.maxBatch))
      n += this.pending[i++]!.entries.length;
    return this.pending.splice(0, i);
  }

  /** Commit what is pending now, synchronously, one attempt (at stop; a lock refuses the batch). */
  flush(): void {
    if (this.draining || this.pending.length === 0) return;
    const calls = this.pending.splice(0);
    try {
      this.buffer.appendMany(calls.flatMap((c) => c.entries));
      this._commits++;
      for (const c of calls) c.resolve();
    } catch (err) {
      for (const c of calls) c.reject(err);
    }
  }
}
