/**
 * How many log batches may be built or sent at once across every
 * registration of the supervisor (issue 19). Each batch is read from the
 * buffer and encoded in memory (up to `max_bytes_per_batch`, 3 MiB, and
 * several times that as JSON); with many registrations publishing into a
 * failing or slow server at the same time, those copies were what made RSS
 * climb during outages. A batch waits for a slot before it is read, and
 * holds it until its PublishLogs answered or failed.
 */
export class PublishGate {
  readonly limit: number;
  private active = 0;
  private peakActive = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(limit: number) {
    this.limit = Math.max(1, Math.floor(limit));
  }

  /** Batches being built or sent now. */
  get inUse(): number {
    return this.active;
  }

  /** The most that were ever in use at once. */
  get peak(): number {
    return this.peakActive;
  }

  /** Run `fn` holding a slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    this.peakActive = Math.max(this.peakActive, this.active);
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter; only when none waits is it freed.
      if (next) next();
      else this.active--;
    }
  }
}

/** Default number of batches in flight at once across registrations. */
export const DEFAULT_PUBLISH_CONCURRENCY = 2;

/** The gate every extension of this process shares unless it is given its own. */
export const sharedPublishGate = new PublishGate(DEFAULT_PUBLISH_CONCURRENCY);
