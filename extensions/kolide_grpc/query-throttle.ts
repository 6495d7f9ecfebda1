/**
 * Local throttling of RequestQueries (docs/protocol/device.md#query-throttle): forward when inside
 * the "forward everything" window (start + startup window, pushed to
 * now + accelerate on an accelerate response) or when the forwarding
 * interval has passed since the last forward. The forward time is taken
 * before the call, so failures are throttled too.
 */
export class QueryThrottle {
  private readonly intervalMs: number;
  private forwardAllUntil: number;
  private lastForwardAt = Number.NEGATIVE_INFINITY;

  constructor(intervalMs: number, startupWindowMs: number, now = Date.now()) {
    this.intervalMs = intervalMs;
    this.forwardAllUntil = now + startupWindowMs;
  }

  /** True (and the forward recorded) when a call may go to the server now. */
  take(now = Date.now()): boolean {
    if (now < this.forwardAllUntil || now >= this.lastForwardAt + this.intervalMs) {
      this.lastForwardAt = now;
      return true;
    }
    return false;
  }

  accelerate(seconds: number, now = Date.now()): void {
    if (seconds > 0) this.forwardAllUntil = now + seconds * 1000;
  }
}
