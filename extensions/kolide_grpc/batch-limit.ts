/**
 * Adaptive PublishLogs batch limit (docs/protocol/device.md#batch-limit;
 * issue 19), per registration and kept between ticks: it starts at the
 * maximum and moves by `stepBytes` (512 KiB) between the floor (512 KiB)
 * and the maximum (`max_bytes_per_batch`, 3 MiB by default), like launcher:
 * - a send that took at least `slowMs` (20 s by default) lowers it, whether
 *   it failed (launcher) or succeeded (a slow link must not keep getting
 *   the batch that made it slow);
 * - a send the server refused for its size (HTTP 413, or an error saying the
 *   payload is too large) lowers it at once, however fast the refusal, and
 *   the refused size becomes a ceiling for this run (growing back into a
 *   size the server refuses would only repeat the refusal);
 * - a quick successful send of a full batch raises it (it grows back);
 * - anything else (quick failures, batches that were not full) leaves it.
 */
export interface BatchLimitOptions {
  maxBytes: number;
  enabled?: boolean;
  stepBytes?: number;
  floorBytes?: number;
  /** A send at least this slow lowers the limit. Default 20 000 ms. */
  slowMs?: number;
}

export const BATCH_LIMIT_STEP = 512 * 1024;

/** Whether a publish error says the batch was too large. */
export function refusedForSize(err: unknown): boolean {
  if ((err as { httpStatus?: unknown } | undefined)?.httpStatus === 413) return true;
  const message = err instanceof Error ? err.message : String(err);
  return /\b413\b|too large|too big|payload size|entity too large/i.test(message);
}

export class BatchLimit {
  readonly maxBytes: number;
  private readonly enabled: boolean;
  private readonly step: number;
  private readonly floor: number;
  private readonly slowMs: number;
  private value: number;
  /** Below the smallest size the server refused for its size. */
  private ceiling: number;
  private lowered = 0;
  private raised = 0;

  constructor(options: BatchLimitOptions) {
    this.maxBytes = options.maxBytes;
    this.enabled = options.enabled ?? true;
    this.step = options.stepBytes ?? BATCH_LIMIT_STEP;
    this.floor = Math.min(options.floorBytes ?? BATCH_LIMIT_STEP, this.maxBytes);
    this.slowMs = options.slowMs ?? 20_000;
    this.value = this.maxBytes;
    this.ceiling = this.maxBytes;
  }

  get current(): number {
    return this.value;
  }

  /** Times the limit went down / up. */
  get changes(): { lowered: number; raised: number } {
    return { lowered: this.lowered, raised: this.raised };
  }

  onFailure(elapsedMs: number, err?: unknown): void {
    if (!this.enabled) return;
    if (err !== undefined && refusedForSize(err)) {
      this.lower();
      this.ceiling = Math.min(this.ceiling, this.value);
    } else if (elapsedMs >= this.slowMs) this.lower();
  }

  onSuccess(batchWasFull: boolean, elapsedMs = 0): void {
    if (!this.enabled) return;
    if (elapsedMs >= this.slowMs) this.lower();
    else if (batchWasFull && this.value < this.ceiling) {
      this.value = Math.min(this.ceiling, this.value + this.step);
      this.raised++;
    }
  }

  private lower(): void {
    if (this.value <= this.floor) return;
    this.value = Math.max(this.floor, this.value - this.step);
    this.lowered++;
  }
}
