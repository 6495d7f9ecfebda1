/**
 * Backoff of the log publication loop while the device server fails (issue
 * 19). Retrying a failing server at the publish interval re-read and
 * re-encoded the oldest batch every cycle for the whole outage (RSS rose
 * from ~120 MB to 250–280 MB in 150 s with 4 registrations). After each
 * tick whose publish failed the wait doubles, from the interval up to
 * `maxMs`, with jitter (a random 50–100% of it) so registrations and
 * devices do not retry in step; the first success resets it.
 */
export interface PublishBackoffOptions {
  intervalMs: number;
  /** Longest wait. Default: 32 intervals, but at most 10 minutes (never below the interval). */
  maxMs?: number;
  /** [0, 1) source of jitter (tests pass a fixed one). Default Math.random. */
  random?: () => number;
}

export const MAX_PUBLISH_BACKOFF_MS = 10 * 60 * 1000;

export class PublishBackoff {
  readonly intervalMs: number;
  readonly maxMs: number;
  private readonly random: () => number;
  private failed = 0;

  constructor(o: PublishBackoffOptions) {
    this.intervalMs = o.intervalMs;
    this.maxMs = Math.max(o.intervalMs, o.maxMs ?? Math.min(o.intervalMs * 32, MAX_PUBLISH_BACKOFF_MS));
    this.random = o.random ?? Math.random;
  }

  /** Consecutive ticks whose publish failed. */
  get failures(): number {
    return this.failed;
  }

  /** The longest the next wait can be (before jitter). */
  get ceilingMs(): number {
    if (this.failed === 0) return this.intervalMs;
    return Math.min(this.maxMs, this.intervalMs * 2 ** Math.min(this.failed, 30));
  }

  /** How long to wait before the next tick. */
  nextDelayMs(): number {
    if (this.failed === 0) return this.intervalMs;
    return Math.max(this.intervalMs, Math.round(this.ceilingMs * (0.5 + 0.5 * this.random())));
  }

  onFailure(): void {
    this.failed++;
  }

  onSuccess(): void {
    this.failed = 0;
  }
}
