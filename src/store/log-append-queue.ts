/**
 * Group commit for log appends: appends made in the same event-loop turn are
 * written in one transaction, and each caller's promise settles only after
 * that transaction committed. Callers (the logger plugin answering osqueryd)
 * therefore never acknowledge a log that is not on disk, while concurrent
 * appends share one commit.
 */
import type { LogAppend, LogBuffer } from './log-buffer.js';

interface Pending {
  entries: LogAppend[];
  waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }>;
}

export class LogAppendQueue {
  private readonly buffer: LogBuffer;
  private readonly maxBatch: number;
  private pending: Pending | undefined;
  private _commits = 0;

  constructor(buffer: LogBuffer, options: { maxBatch?: number } = {}) {
    this.buffer = buffer;
    this.maxBatch = options.maxBatch ?? 10_000;
  }

  /** Transactions committed so far. */
  get commits(): number {
    return this._commits;
  }

  append(entries: readonly LogAppend[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      if (!this.pending) {
        this.pending = { entries: [], waiters: [] };
        setImmediate(() => this.flush());
      }
      for (const e of entries) this.pending.entries.push(e);
      this.pending.waiters.push({ resolve, reject });
      if (this.pending.entries.length >= this.maxBatch) this.flush();
    });
  }

  /** Commit what is pending now (also called by the scheduled flush). */
  flush(): void {
    const batch = this.pending;
    if (!batch) return;
    this.pending = undefined;
    try {
      this.buffer.appendMany(batch.entries);
      this._commits++;
      for (const w of batch.waiters) w.resolve();
    } catch (err) {
      for (const w of batch.waiters) w.reject(err);
    }
  }
}
