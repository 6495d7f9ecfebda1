/**
 * Locks held by another process (issue 13, ADR 0009). SQLite waits at most
 * BUSY_TIMEOUT_MS itself; a write that still meets the lock fails with
 * SQLITE_BUSY and is retried here, asynchronously, with exponential backoff,
 * so the event loop keeps serving every tenant and the control API meanwhile.
 * The retries are bounded by a time budget; past it the caller gets a clear
 * E_STORE error naming what was being written.
 */
import { LauncherError, errorMessage } from '../errors.js';

/** True for SQLITE_BUSY* and SQLITE_LOCKED* (a lock another connection holds). */
export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

export interface RetryOptions {
  /** Give up after this long (ms) of meeting the lock. */
  budgetMs: number;
  /** First wait (ms); doubles up to maxDelayMs. */
  firstDelayMs?: number;
  maxDelayMs?: number;
}

/** The wait before attempt `n` (1-based) of a busy retry. */
export function backoffDelay(attempt: number, o: RetryOptions): number {
  const first = o.firstDelayMs ?? 1;
  const max = o.maxDelayMs ?? 100;
  return Math.min(max, first * 2 ** Math.min(attempt - 1, 20));
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Run `fn` (one synchronous SQLite write or transaction); while it fails with
 * a lock error, wait and try again until `budgetMs` has passed.
 */
export async function retryBusy<T>(what: string, fn: () => T, o: RetryOptions): Promise<T> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err)) throw err;
      const waited = Date.now() - started;
      if (waited >= o.budgetMs) throw busyError(what, attempt, waited, err);
      await sleep(Math.min(backoffDelay(attempt, o), Math.max(1, o.budgetMs - waited)));
    }
  }
}

export function busyError(what: string, attempts: number, waitedMs: number, cause: unknown): LauncherError {
  return new LauncherError(
    'E_STORE',
    `${what}: the database is locked by another process (${errorMessage(cause)}); gave up after ${attempts} attempt(s) over ${waitedMs} ms`,
    { cause },
  );
}
