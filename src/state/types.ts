/**
 * The typed state objects of the supervisor, shared by the runtime (which
 * produces them), the state tables (which describe them as columns) and the
 * control API (which sends them). Times are Unix epoch milliseconds; `null`
 * means not known or not applicable.
 */

export type LimitMode = 'cgroup-v2' | 'cgroup-v1' | 'watchdog' | 'none';

export interface Limits {
  memory_mb?: number;
  cpu_percent?: number;
}

export interface LimitsInForce {
  memory_mb: number | null;
  cpu_percent: number | null;
  mode: LimitMode;
}

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
  run_id: string | null;
  started_at: number | null;
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

export interface RunRecord {
  registration_id: string;
  run_id: string;
  osqueryd_path: string;
  version: string | null;
  pid: number | null;
  start_time: number;
  connect_time: number | null;
  exit_time: number | null;
  exit_code: number | null;
  signal: string | null;
  error: string | null;
  /** osquery's own instance id (osquery_info.instance_id), once connected. */
  instance_id?: string | null;
  hostname?: string | null;
}

export interface RegistrationState {
  id: string;
  enroll_secret_source: 'value' | 'file' | 'none';
  enroll_secret_path: string | null;
  limits: Limits;
  osquery_flags: string[];
  created_at: number | null;
  /** 'config' (the file) or 'runtime' (enrolled through the control API). */
  origin: string;
  enrolled: boolean;
  disabled: boolean;
}

export interface LogBufferState {
  registration_id: string;
  log_type: 'result' | 'status';
  count: number;
  bytes: number;
  dropped: number;
  oldest_age_seconds: number | null;
}

/** Everything the state tables read; the composition root implements it over the live runtime. */
export interface StateSource {
  registrations(ids?: readonly string[]): RegistrationState[];
  instances(ids?: readonly string[]): InstanceInfo[];
  history(ids?: readonly string[]): RunRecord[];
  logBuffers(ids?: readonly string[]): LogBufferState[];
}
