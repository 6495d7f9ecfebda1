/**
 * Timings of one instance, with launcher's values (docs/protocol/device.md#timings) where we
 * have no better evidence. Tests shrink them; none of them is a correctness
 * assumption, only a bound.
 */
export interface InstanceTimings {
  /** How long osqueryd may take to create its socket. Launcher: 10 s (startup p95 is just over 2 s, launcher PR #2041). */
  socketTimeoutMs: number;
  /** Socket existence poll. Launcher polls every 1 s; a stat is cheap, so we poll faster and connect sooner. */
  socketPollMs: number;
  /** Connecting the manager client and registering our extension. Launcher: 10 s. */
  connectTimeoutMs: number;
  connectPollMs: number;
  /** Per-call Thrift timeout for registration, pings and osquery_info. */
  callTimeoutMs: number;
  /** Health check period. Launcher: 60 s. */
  healthIntervalMs: number;
  /** First health check after the instance is running. Launcher waits 10 min; we only start the clock once registration is verified. */
  healthStartupDelayMs: number;
  /** Per-call timeout inside a health check. Launcher: 10 s. */
  healthTimeoutMs: number;
  /** Consecutive failed checks that end the run. Launcher: 5. */
  healthMaxFailures: number;
  /** How often our extension server pings osqueryd (and stops when it is gone). */
  managerPingIntervalMs: number;
  /** SIGTERM → SIGKILL grace for the process group. osquery's own watchdog uses 4 s. */
  stopGraceMs: number;
  /** Bound on each cleanup step. */
  cleanupStepTimeoutMs: number;
}

export const DEFAULT_INSTANCE_TIMINGS: InstanceTimings = {
  socketTimeoutMs: 10_000,
  socketPollMs: 50,
  connectTimeoutMs: 10_000,
  connectPollMs: 200,
  callTimeoutMs: 5_000,
  healthIntervalMs: 60_000,
  healthStartupDelayMs: 60_000,
  healthTimeoutMs: 10_000,
  healthMaxFailures: 3,
  managerPingIntervalMs: 3_000,
  stopGraceMs: 5_000,
  cleanupStepTimeoutMs: 10_000,
};
