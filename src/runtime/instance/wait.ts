/**
 * Bounded waiting on real conditions, cancellable through an AbortSignal.
 */
import { LauncherError } from '../../errors.js';

/**
 * Sleep `ms`; resolves early (without throwing) when any of `signals` aborts.
 * Listeners are removed when it resolves, so long-lived signals do not
 * collect one per sleep.
 */
export function delay(ms: number, ...signals: Array<AbortSignal | undefined>): Promise<void> {
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  return new Promise((resolve) => {
    if (live.some((s) => s.aborted)) return resolve();
    const done = () => {
      clearTimeout(timer);
      for (const s of live) s.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const s of live) s.addEventListener('abort', done, { once: true });
  });
}

/**
 * Call `probe` every `intervalMs` until it returns a value other than
 * undefined/false, for at most `timeoutMs`. E_TIMEOUT (naming `what`) when the
 * time is up, E_SHUTDOWN when `signal` aborts first. Errors thrown by `probe`
 * count as "not yet" and the last one is kept as the cause.
 */
export async function pollUntil<T>(
  what: string,
  probe: () => T | false | undefined | Promise<T | false | undefined>,
  o: { timeoutMs: number; intervalMs: number; signal?: AbortSignal },
): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  let lastError: unknown;
  for (;;) {
    if (o.signal?.aborted) throw new LauncherError('E_SHUTDOWN', `stopped while waiting for ${what}`);
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const tail = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new LauncherError('E_TIMEOUT', `timed out after ${o.timeoutMs} ms waiting for ${what}${tail}`, { cause: lastError });
    }
    await delay(Math.min(o.intervalMs, Math.max(1, deadline - Date.now())), o.signal);
  }
}
