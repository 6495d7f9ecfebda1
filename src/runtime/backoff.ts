/**
 * Restart delays for one registration: exponential with jitter, reset after a
 * run that stayed up for `stableAfterMs`, and a crash-loop flag when
 * `crashLoopThreshold` failures fall within `crashLoopWindowMs`.
 *
 * Why not launcher's fixed 10 s (reference §3.1): a tenant whose osqueryd dies
 * at once would be relaunched 360 times an hour forever; osquery's own watcher
 * uses 5 s + 2^n (cap 600 s) for the same reason (peers §1.4). See ADR 0004.
 */
export interface BackoffOptions {
  /** First delay after a failure. Default 1 s. */
  initialMs: number;
  /** Cap. Default 60 s. */
  maxMs: number;
  /** Growth per consecutive failure. Default 2. */
  multiplier: number;
  /** ± fraction of random spread, so instances failing together do not restart together. Default 0.2 (keep < 1/3 so delays still grow). */
  jitter: number;
  /** A run that stayed up this long resets the count. Default 60 s. */
  stableAfterMs: number;
  /** Failures within the window that make a crash loop. Default 5 in 5 min. */
  crashLoopThreshold: number;
  crashLoopWindowMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 1_000,
  maxMs: 60_000,
  multiplier: 2,
  jitter: 0.2,
  stableAfterMs: 60_000,
  crashLoopThreshold: 5,
  crashLoopWindowMs: 5 * 60_000,
};

export class RestartBackoff {
  private readonly o: BackoffOptions;
  private readonly random: () => number;
  private consecutive = 0;
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
    const exp = this.o.initialMs * this.o.multiplier ** this.consecutive;
    this.consecutive += 1;
    const base = Math.min(this.o.maxMs, exp);
    const spread = 1 + this.o.jitter * (2 * this.random() - 1);
    return Math.max(0, Math.round(Math.min(this.o.maxMs, base * spread)));
  }

  /** Forget failures (an operator restart, a stable run observed while still up). */
  reset(): void {
    this.consecutive = 0;
    this.recent = [];
  }
}
