/**
 * Restart delays for one registration: exponential with jitter, reset after a
 * run that stayed up for `stableAfterMs`, and a crash-loop flag when
 * `crashLoopThreshold` failures fall within `crashLoopWindowMs`.
 *
 * The first failure of a run that got running, after a stable period (or the
 * first ever), waits only `quickRestartMs` (issue 14: a one-off crash of a
 * healthy instance comes back at once); every further failure before the
 * next stable run grows from `initialMs`, so a real crash loop still backs off.
 * A run that never got running (uptime 0) is not a one-off crash: it grows at once.
 *
 * Why not launcher's fixed 10 s (docs/protocol/device.md#runner): a tenant whose osqueryd dies
 * at once would be relaunched 360 times an hour forever; osquery's own watcher
 * uses 5 s + 2^n (cap 600 s) for the same reason (docs/protocol/osquery-extensions.md#watchdog). See ADR 0004.
 */
export interface BackoffOptions {
  /** Delay after the first failure of a run that was up, since the last stable run. Default 0: at once (the growth starts with the next failure). */
  quickRestartMs: number;
  /** First delay of the growing series. Default 1 s. */
  initialMs: number;
  /** Cap. Default 60 s. */
  maxMs: number;
  /** Growth per consecutive failure. Default 2. */
  multiplier: number;
  /** ± fraction of random spread, so instances failing together do not restart together. Default 0.2 (keep < 1/3 so delays still grow). */
  jitter: number;
  /** A run that stayed up this long resets the count. Default 10 s (a crash loop dies within seconds of starting). */
  stableAfterMs: number;
  /** Failures within the window that make a crash loop. Default 5 in 5 min. */
  crashLoopThreshold: number;
  crashLoopWindowMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  quickRestartMs: 0,
  initialMs: 1_000,
  maxMs: 60_000,
  multiplier: 2,
  jitter: 0.2,
  stableAfterMs: 10_000,
  crashLoopThreshold: 5,
  crashLoopWindowMs: 5 * 60_000,
};

export class RestartBackoff {
  private readonly o: BackoffOptions;
  private readonly random: () => number;
  private consecutive = 0;
  /** Failures of the growing series since the last stable run (the quick one excluded). */
  private grown = 0;
  private recent: number[] = [];

  constructor(options: Partial<BackoffOptions> = {}, random: () => number = Math.random) {
    this.o = { ...DEFAULT_BACKOFF, ...options };
    this.random = random;
  }

  get stableAfterMs(): number {
    return this.o.stableAfterMs;
  }

  /** Consecutive failures since the last stable run. */
  get failures(): number {
    return this.consecutive;
  }

  /** Whether the failures within the window reach the threshold. */
  crashLoop(now = Date.now()): boolean {
    this.recent = this.recent.filter((t) => now - t <= this.o.crashLoopWindowMs);
    return this.recent.length >= this.o.crashLoopThreshold;
  }

  /**
   * A run ended with an error after `uptimeMs` of being up (0 when it never got
   * running). Returns the delay before the next launch.
   */
  failure(uptimeMs: number, now = Date.now()): number {
    if (uptimeMs >= this.o.stableAfterMs) this.reset();
    this.recent.push(now);
    const quick = this.consecutive === 0 && uptimeMs > 0;
    this.consecutive += 1;
    if (quick) return this.o.quickRestartMs;
    const exp = this.o.initialMs * this.o.multiplier ** this.grown;
    this.grown += 1;
    const base = Math.min(this.o.maxMs, exp);
    const spread = 1 + this.o.jitter * (2 * this.random() - 1);
    return Math.max(0, Math.round(Math.min(this.o.maxMs, base * spread)));
  }

  /** Forget failures (an operator restart, a stable run observed while still up). */
  reset(): void {
    this.consecutive = 0;
    this.grown = 0;
    this.recent = [];
  }
}
