/** Bounded polling of a real condition (never a sleep as synchronisation). */

/**
 * Call `check` every `intervalMs` until it returns something truthy; throws
 * after `timeoutMs`, naming `what`, the last error, and `explain()` when given
 * (a log tail, a status dump) so a failure says what the system was doing.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  options: { timeoutMs: number; intervalMs?: number; explain?: () => string },
): Promise<NonNullable<T>> {
  const deadline = Date.now() + options.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const why = last ? `: ${last instanceof Error ? last.message : String(last)}` : '';
      throw new Error(
        `timed out after ${options.timeoutMs} ms waiting for ${what}${why}${options.explain ? `\n${options.explain()}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 25));
  }
}

/** Resolve after `ms` (pacing a load generator, never synchronisation). */
export function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
