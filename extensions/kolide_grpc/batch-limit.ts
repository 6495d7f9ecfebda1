/**
 * Adaptive PublishLogs batch limit (docs/protocol/device.md#batch-limit):
 * starts at the maximum; a failure that took at least `slowFailureMs` lowers
 * it by `stepBytes` (not below the floor); a successful full batch raises it
 * by `stepBytes` (not above the maximum); anything else leaves it alone.
 */
export interface BatchLimitOptions {
  maxBytes: number;
  enabled?: boolean;
  stepBytes?: number;
  floorBytes?: number;
  slowFailureMs?: number;
}

export const BATCH_LIMIT_STEP = 512 * 1024;

export class BatchLimit {
  readonly maxBytes: number;
  private readonly enabled: boolean;
  private readonly step: number;
  private readonly floor: number;
  private readonly slowFailureMs: number;
  private value: number;

  constructor(options: BatchLimitOptions) {
    this.maxBytes = options.maxBytes;
    this.enabled = options.enabled ?? true;
    this.step = options.stepBytes ?? BATCH_LIMIT_STEP;
    this.floor = Math.min(options.floorBytes ?? BATCH_LIMIT_STEP, this.maxBytes);
    this.slowFailureMs = options.slowFailureMs ?? 20_000;
    this.value = this.maxBytes;
  }

  get current(): number {
    return this.value;
  }

  onFailure(elapsedMs: number): void {
    if (this.enabled && elapsedMs >= this.slowFailureMs) this.value = Math.max(this.floor, this.value - this.step);
  }

  onSuccess(batchWasFull: boolean): void {
    if (this.enabled && batchWasFull) this.value = Math.min(this.maxBytes, this.value + this.step);
  }
}
