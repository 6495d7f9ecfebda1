/**
 * What the control server needs from the supervisor. The runtime implements
 * this interface; the server never reaches into the runtime otherwise.
 *
 * Conventions: times are Unix epoch milliseconds, `null` means "not known /
 * not applicable". Methods throw `LauncherError` with E_NOT_FOUND (unknown
 * registration), E_ALREADY_EXISTS, E_INVALID_REGISTRATION_ID,
 * E_INVALID_ARGUMENT or E_TIMEOUT; the server maps those to gRPC status codes
 * (src/control/status.ts). Authorization is the server's job: the target
 * trusts every call it receives.
 *
 * This file has no imports so that both src/runtime and src/control can
 * depend on it without crossing layers; `OutputSource` is the structural
 * shape of src/runtime/output-ring.ts's `OutputRing`.
 */

/** How resource limits are enforced for a run. */
export type LimitMode = 'cgroup-v2' | 'cgroup-v1' | 'watchdog' | 'none';

/** Limits requested for a registration; absent: launcher default. */
export interface Limits {
  memory_mb?: number;
  cpu_percent?: number;
}

/** Limits applied to the current run; `null`: no limit. */
export interface LimitsInForce {
  memory_mb: number | null;
  cpu_percent: number | null;
  mode: LimitMode;
}

/** Logs buffered for delivery to the tenant's device server. */
export interface BufferStats {
  result_count: number;
  status_count: number;
  bytes: number;
  dropped: number;
}

export interface InstanceInfo {
  /** Registration id. */
  id: string;
  /** Supervisor state, e.g. 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped'. */
  state: string;
  pid: number | null;
  /** Current (or last) run, null before the first start. */
  run_id: string | null;
  started_at: number | null;
  /** When the extension registered with osqueryd. */
  connected_at: number | null;
  uptime_seconds: number;
  healthy: boolean;
  restarts: number;
  last_error: string | null;
  limits: LimitsInForce;
  buffers: BufferStats;
  osqueryd_path: string | null;
  osqueryd_version: string | null;
}

/** One osqueryd process lifetime. */
export interface RunRecord {
  registration_id: string;
  run_id: string;
  osqueryd_path: string;
  version: string | null;
  pid: number | null;
  start_time: number;
  connect_time: number | null;
  /** null while the run is still going. */
  exit_time: number | null;
  exit_code: number | null;
  /** Terminating signal name, e.g. 'SIGKILL'. */
  signal: string | null;
  error: string | null;
}

export interface VersionInfo {
  serverVersion: string;
  apiVersion: string;
  /** Extra feature names the runtime supports; the server adds its own. */
  features: string[];
}

export interface HealthInfo {
  healthy: boolean;
  instances: Array<{ id: string; healthy: boolean; state: string }>;
}

export interface AddRegistrationInput {
  id: string;
  /** Exactly one of `enrollSecret` and `enrollSecretPath` is set. */
  enrollSecret?: string;
  enrollSecretPath?: string;
  limits?: Limits;
  osqueryFlags?: string[];
}

/** Structural view of `OutputRing` (src/runtime/output-ring.ts). */
export interface OutputSource {
  readonly runId: string;
  readonly closed: boolean;
  subscribe(options?: {
    from?: 'beginning' | 'now' | number;
    follow?: boolean;
    signal?: AbortSignal;
  }): AsyncIterableIterator<{
    readonly seq: number;
    readonly stream: 'stdout' | 'stderr';
    readonly text: string;
    readonly time: number;
    readonly missed: number;
  }>;
}

export interface ControlTarget {
  version(): VersionInfo;
  health(): HealthInfo;
  listInstances(): InstanceInfo[];
  getInstance(id: string): InstanceInfo | undefined;
  addRegistration(req: AddRegistrationInput): Promise<InstanceInfo>;
  removeRegistration(id: string): Promise<void>;
  restartInstance(id: string): Promise<InstanceInfo>;
  query(id: string, sql: string, timeoutMs: number): Promise<Array<Record<string, string>>>;
  /** Runs of a registration, newest first, at most `limit`. */
  history(id: string, limit: number): RunRecord[];
  /** The current run's output, or undefined when no run has started. */
  output(id: string): OutputSource | undefined;
}
