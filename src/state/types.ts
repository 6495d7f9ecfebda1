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

/** issue 22: mode '' before the first run; reason only when unavailable. */
export interface IsolationInForce {
  mode: '' | 'filesystem' | 'none' | 'unavailable';
  reason: string | null;
  /** Comma-separated, as osqueryd's --disable_tables. */
  disabled_tables: string;
}

export interface BufferStats {
  result_count: number;
  status_count: number;
  bytes: number;
  dropped: number;
}

/**
 * A registration's standing with its device server, beside (never folded
 * into) `healthy`, which is about osqueryd and the extension (issue 15):
 * `enrolled` (node key held, last calls fine), `enrolling` (no node key yet,
 * nothing failed so far), `failing` (enrollment or the last config, log
 * publish or query poll failed: `error`, and `since` the streak began),
 * `disabled` (the server answered disable_device).
 */
export type DeviceStateName = 'enrolled' | 'enrolling' | 'failing' | 'disabled';

export interface DeviceState {
  state: DeviceStateName;
  /** What failed and the backend's (or transport's) message, while failing. */
  error: string | null;
  /** Epoch ms the current failure streak began, while failing. */
  since: number | null;
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
  /** Filesystem isolation of the current run (issue 22). */
  isolation: IsolationInForce;
  buffers: BufferStats;
  osqueryd_path: string | null;
  osqueryd_version: string | null;
  /** Standing with the device server (issue 15). */
  device: DeviceState;
  /** The device server this registration talks to (the configured one unless the backend moved it). */
  device_url: string;
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
  device: DeviceState;
  device_url: string;
}

export interface LogBufferState {
  registration_id: string;
  log_type: 'result' | 'status';
  count: number;
  bytes: number;
  dropped: number;
  oldest_age_seconds: number | null;
}

/**
 * The launcher as one instance's extension describes it (`kolide_launcher_info`,
 * launcher's columns). Per instance: `enrollment_id` is that instance's own
 * registration id (launcher always says "default"), `identifier` its host
 * identifier, `osquery_instance_id` its osqueryd's instance id.
 */
export interface LauncherInfo {
  branch: string;
  build_date: string;
  build_user: string;
  /** The Node.js version (launcher: Go's). */
  go_version: string;
  goarch: string;
  goos: string;
  revision: string;
  version: string;
  version_chain: string;
  enrollment_id: string;
  identifier: string;
  osquery_instance_id: string;
  /** Seconds the supervisor process has been up. */
  uptime: number;
  signing_key: string;
  signing_key_source: string;
  local_key: string;
  hardware_key: string;
  hardware_key_source: string;
  fingerprint: string;
  public_key: string;
}

/** A query quarantined for one registration (issue 16; src/store/quarantine.ts). Times are ms since the epoch. */
export interface QuarantineState {
  registration_id: string;
  /** 'scheduled' or 'distributed'. */
  kind: string;
  /** Scheduled: the query name; distributed: ''. */
  name: string;
  sql_hash: string;
  sql: string;
  /** Distributed: the backend id of the run that quarantined it; scheduled: the name. */
  query_id: string;
  reason: string;
  incidents: number;
  quarantined_at: number;
  expires_at: number;
  /** What `ctl quarantine release` takes: the name, else a SQL hash prefix. */
  release_handle: string;
}

/**
 * One self-checkup (issue 18): a doctor check the supervisor ran on itself.
 * Host-level: the vendor sees these rows, tenants none (details name paths,
 * the device server and other registrations).
 */
export interface CheckupState {
  name: string;
  /** pass, warn or fail. */
  status: string;
  detail: string;
  /** Epoch ms of the round that produced it. */
  checked_at: number;
  /** Epoch ms the check first showed its current status. */
  changed_at: number;
  previous_status: string | null;
}

/**
 * One registration's osqueryd update standing (issue 17, `kolide_launcher_updates`): the version it runs, the one
 * it is assigned and ran before, its pin, what a running rollout will move it to, and the host's last check.
 */
export interface UpdateState {
  registration_id: string;
  /** What its osqueryd reports now (osquery_info.version). */
  running_version: string | null;
  /** The installed version it is assigned; null: the configured osqueryd_path. */
  assigned_version: string | null;
  previous_version: string | null;
  pinned_version: string | null;
  /** 'config' or 'api'. */
  pin_source: string | null;
  pending_version: string | null;
  /** Host-wide, repeated on every row: the channel, what it points at, the rollout and the last check. */
  channel: string | null;
  available_version: string | null;
  rollout_version: string | null;
  /** running, done or rolled_back. */
  rollout_state: string | null;
  /** Epoch ms. */
  last_check_at: number | null;
  /** ok, refused, unreachable or failed. */
  last_check_result: string | null;
  last_check_error: string | null;
  /** Versions marked bad on this host, comma-separated. */
  bad_versions: string;
}
