/**
 * The supervisor's state tables (issue 7). Names follow launcher's where a
 * launcher table exists (`kolide_launcher_osquery_instance_history` keeps its
 * columns first, for queries written against launcher).
 */
import type { TablePlugin } from '../osquery/plugins.js';
import { columnsOf, defineStateTable, stateTablePlugin, type Scope } from './table.js';
import type { CheckupState, InstanceInfo, LogBufferState, QuarantineState, RegistrationState, RunRecord, UpdateState } from './types.js';

/**
 * Everything the state tables read; the composition root (src/app/state-source.ts) implements it over the live
 * runtime. A new table adds its method here, beside its definition below, so a table is described in this one
 * file: where its rows come from, its columns, its scope (docs/CONTRIBUTING.md).
 */
export interface StateSource {
  registrations(ids?: readonly string[]): RegistrationState[];
  instances(ids?: readonly string[]): InstanceInfo[];
  history(ids?: readonly string[]): RunRecord[];
  logBuffers(ids?: readonly string[]): LogBufferState[];
  /** issue 16: queries quarantined for these registrations. */
  quarantine(ids?: readonly string[]): QuarantineState[];
  /** The latest self-checkups (host-level; see CheckupState). */
  checkups(): CheckupState[];
  /** issue 17: one row per registration; empty when the supervisor has no update service. */
  updates(ids?: readonly string[]): UpdateState[];
}

const iso = (ms: number | null | undefined): string => (ms ? new Date(ms).toISOString() : '');
const secs = (ms: number | null | undefined): number | null => (ms ? Math.floor(ms / 1000) : null);

const reg = columnsOf<RegistrationState>();
export const registrationsTable = defineStateTable<RegistrationState, StateSource>()({
  name: 'kolide_launcher_registrations',
  description: 'Registrations (vendor and tenants) this supervisor runs an osqueryd for.',
  owner: (r) => r.id,
  rows: (s, ids) => s.registrations(ids),
  columns: [
    reg({ name: 'registration_id', type: 'TEXT', field: 'id', description: 'Registration id' }),
    reg({
      name: 'origin',
      type: 'TEXT',
      field: 'origin',
      description: 'config (from the file) or runtime (enrolled through the control API)',
    }),
    reg({
      name: 'enroll_secret_source',
      type: 'TEXT',
      field: 'enroll_secret_source',
      description: 'value, file or none (the secret itself is never shown)',
    }),
    reg({ name: 'enroll_secret_path', type: 'TEXT', field: 'enroll_secret_path', description: 'Enroll secret file, when file' }),
    reg({ name: 'memory_limit_mb', type: 'INTEGER', field: 'limits.memory_mb', description: 'Requested memory limit' }),
    reg({ name: 'cpu_limit_percent', type: 'INTEGER', field: 'limits.cpu_percent', description: 'Requested CPU limit' }),
    reg({
      name: 'osquery_flags',
      type: 'TEXT',
      field: 'osquery_flags',
      description: 'Extra osqueryd flags, space separated',
      render: (f) => f.join(' '),
    }),
    reg({ name: 'created_at', type: 'BIGINT', field: 'created_at', description: 'Unix seconds the registration was added', render: secs }),
    reg({ name: 'enrolled', type: 'INTEGER', field: 'enrolled', description: '1 when a node key is held' }),
    reg({ name: 'disabled', type: 'INTEGER', field: 'disabled', description: '1 when the device server answered disable_device' }),
    reg({ name: 'device_state', type: 'TEXT', field: 'device.state', description: 'enrolled, enrolling, failing or disabled' }),
    reg({ name: 'device_error', type: 'TEXT', field: 'device.error', description: 'What failed and the message, while failing' }),
    reg({
      name: 'device_failing_since',
      type: 'BIGINT',
      field: 'device.since',
      description: 'Unix seconds the failure streak began',
      render: secs,
    }),
    reg({
      name: 'device_url',
      type: 'TEXT',
      field: 'device_url',
      description: 'Device server of this registration (moved by wrong_region)',
    }),
  ],
});

const inst = columnsOf<InstanceInfo>();
export const instancesTable = defineStateTable<InstanceInfo, StateSource>()({
  name: 'kolide_launcher_instances',
  description: 'One row per supervised osquery instance: its current run, health and limits.',
  owner: (r) => r.id,
  rows: (s, ids) => s.instances(ids),
  columns: [
    inst({ name: 'registration_id', type: 'TEXT', field: 'id', description: 'Registration id' }),
    inst({ name: 'state', type: 'TEXT', field: 'state', description: 'Supervisor state of the instance' }),
    inst({ name: 'pid', type: 'INTEGER', field: 'pid', description: 'osqueryd pid' }),
    inst({ name: 'run_id', type: 'TEXT', field: 'run_id', description: 'Current run id (ULID)' }),
    inst({ name: 'started_at', type: 'BIGINT', field: 'started_at', description: 'Unix seconds the run started', render: secs }),
    inst({
      name: 'connected_at',
      type: 'BIGINT',
      field: 'connected_at',
      description: 'Unix seconds the extension connected',
      render: secs,
    }),
    inst({ name: 'uptime_seconds', type: 'BIGINT', field: 'uptime_seconds', description: 'Seconds since the run started' }),
    inst({ name: 'healthy', type: 'INTEGER', field: 'healthy', description: '1 when the last health check passed' }),
    inst({ name: 'restarts', type: 'INTEGER', field: 'restarts', description: 'Restarts since the supervisor started' }),
    inst({ name: 'last_error', type: 'TEXT', field: 'last_error', description: 'Last error of this registration' }),
    inst({ name: 'limit_mode', type: 'TEXT', field: 'limits.mode', description: 'cgroup-v2, cgroup-v1, watchdog or none' }),
    inst({ name: 'memory_limit_mb', type: 'INTEGER', field: 'limits.memory_mb', description: 'Memory limit in force' }),
    inst({ name: 'cpu_limit_percent', type: 'INTEGER', field: 'limits.cpu_percent', description: 'CPU limit in force' }),
    inst({
      name: 'isolation',
      type: 'TEXT',
      field: 'isolation.mode',
      description: 'filesystem (own mount namespace), none or unavailable (issue 22)',
    }),
    inst({ name: 'isolation_reason', type: 'TEXT', field: 'isolation.reason', description: 'Why filesystem isolation is unavailable' }),
    inst({
      name: 'disabled_tables',
      type: 'TEXT',
      field: 'isolation.disabled_tables',
      description: 'Tables this osqueryd runs without (--disable_tables)',
    }),
    inst({ name: 'buffered_results', type: 'INTEGER', field: 'buffers.result_count', description: 'Result logs waiting for delivery' }),
    inst({ name: 'buffered_statuses', type: 'INTEGER', field: 'buffers.status_count', description: 'Status logs waiting for delivery' }),
    inst({ name: 'buffered_bytes', type: 'BIGINT', field: 'buffers.bytes', description: 'Bytes waiting for delivery' }),
    inst({ name: 'dropped_logs', type: 'BIGINT', field: 'buffers.dropped', description: 'Logs dropped by the buffer cap' }),
    inst({ name: 'osqueryd_path', type: 'TEXT', field: 'osqueryd_path', description: 'osqueryd binary' }),
    inst({ name: 'osqueryd_version', type: 'TEXT', field: 'osqueryd_version', description: 'osqueryd version' }),
    inst({
      name: 'device_state',
      type: 'TEXT',
      field: 'device.state',
      description: 'enrolled, enrolling, failing or disabled (beside healthy, not part of it)',
    }),
    inst({ name: 'device_error', type: 'TEXT', field: 'device.error', description: 'What failed and the message, while failing' }),
    inst({
      name: 'device_failing_since',
      type: 'BIGINT',
      field: 'device.since',
      description: 'Unix seconds the failure streak began',
      render: secs,
    }),
    inst({ name: 'device_url', type: 'TEXT', field: 'device_url', description: 'Device server of this registration' }),
  ],
});

const run = columnsOf<RunRecord>();
export const historyTable = defineStateTable<RunRecord, StateSource>()({
  name: 'kolide_launcher_osquery_instance_history',
  description: 'Past and current osqueryd runs, newest first (launcher-compatible columns first).',
  owner: (r) => r.registration_id,
  rows: (s, ids) => s.history(ids),
  columns: [
    run({ name: 'enrollment_id', type: 'TEXT', field: 'registration_id', description: 'Registration id (launcher name)' }),
    run({ name: 'instance_run_id', type: 'TEXT', field: 'run_id', description: 'Run id' }),
    run({ name: 'start_time', type: 'TEXT', field: 'start_time', description: 'RFC 3339 start time', render: iso }),
    run({ name: 'connect_time', type: 'TEXT', field: 'connect_time', description: 'RFC 3339 time the extension connected', render: iso }),
    run({ name: 'exit_time', type: 'TEXT', field: 'exit_time', description: 'RFC 3339 exit time', render: iso }),
    run({ name: 'hostname', type: 'TEXT', field: 'hostname', description: 'Host name at launch' }),
    run({ name: 'instance_id', type: 'TEXT', field: 'instance_id', description: "osquery's instance id" }),
    run({ name: 'version', type: 'TEXT', field: 'version', description: 'osqueryd version' }),
    run({ name: 'errors', type: 'TEXT', field: 'error', description: 'Error that ended the run' }),
    run({ name: 'registration_id', type: 'TEXT', field: 'registration_id', description: 'Registration id' }),
    run({ name: 'pid', type: 'INTEGER', field: 'pid', description: 'osqueryd pid' }),
    run({ name: 'osqueryd_path', type: 'TEXT', field: 'osqueryd_path', description: 'osqueryd binary' }),
    run({ name: 'exit_code', type: 'INTEGER', field: 'exit_code', description: 'Exit code, when it exited' }),
    run({ name: 'signal', type: 'TEXT', field: 'signal', description: 'Signal that ended it, when killed' }),
  ],
});

const buf = columnsOf<LogBufferState>();
export const logBuffersTable = defineStateTable<LogBufferState, StateSource>()({
  name: 'kolide_launcher_log_buffers',
  description: 'Durable log buffers between osqueryd and the device server.',
  owner: (r) => r.registration_id,
  rows: (s, ids) => s.logBuffers(ids),
  columns: [
    buf({ name: 'registration_id', type: 'TEXT', field: 'registration_id', description: 'Registration id' }),
    buf({ name: 'log_type', type: 'TEXT', field: 'log_type', description: 'result or status' }),
    buf({ name: 'count', type: 'BIGINT', field: 'count', description: 'Logs waiting' }),
    buf({ name: 'bytes', type: 'BIGINT', field: 'bytes', description: 'Bytes waiting' }),
    buf({ name: 'dropped', type: 'BIGINT', field: 'dropped', description: 'Logs dropped by the cap, ever' }),
    buf({ name: 'oldest_age_seconds', type: 'BIGINT', field: 'oldest_age_seconds', description: 'Age of the oldest waiting log' }),
  ],
});

const qua = columnsOf<QuarantineState>();
export const quarantineTable = defineStateTable<QuarantineState, StateSource>()({
  name: 'kolide_launcher_quarantine',
  description: 'Queries quarantined for a registration after crashing or hanging its osqueryd (issue 16).',
  owner: (r) => r.registration_id,
  rows: (s, ids) => s.quarantine(ids),
  columns: [
    qua({ name: 'registration_id', type: 'TEXT', field: 'registration_id', description: 'Registration id' }),
    qua({ name: 'kind', type: 'TEXT', field: 'kind', description: 'scheduled or distributed' }),
    qua({ name: 'name', type: 'TEXT', field: 'name', description: 'Scheduled query name (empty for distributed)' }),
    qua({ name: 'sql_hash', type: 'TEXT', field: 'sql_hash', description: 'SHA-256 of the SQL (hex)' }),
    qua({ name: 'query', type: 'TEXT', field: 'sql', description: 'The SQL' }),
    qua({ name: 'query_id', type: 'TEXT', field: 'query_id', description: 'Backend id of the distributed run that quarantined it' }),
    qua({ name: 'reason', type: 'TEXT', field: 'reason', description: 'Why it was quarantined' }),
    qua({ name: 'incidents', type: 'INTEGER', field: 'incidents', description: 'Incidents that led to the quarantine' }),
    qua({ name: 'quarantined_at', type: 'BIGINT', field: 'quarantined_at', description: 'Unix time it was quarantined', render: secs }),
    qua({ name: 'expires_at', type: 'BIGINT', field: 'expires_at', description: 'Unix time the quarantine ends', render: secs }),
    qua({ name: 'release_handle', type: 'TEXT', field: 'release_handle', description: 'What launcher ctl quarantine release takes' }),
  ],
});

/** Owner of host-level rows: not a registration id (the id rule forbids parentheses), so only the vendor scope sees them. */
export const HOST_OWNER = '(host)';

const chk = columnsOf<CheckupState>();
export const checkupsTable = defineStateTable<CheckupState, StateSource>()({
  name: 'kolide_launcher_checkups',
  description: "The supervisor's self-checkups (the doctor's checks, run at start and hourly); vendor only.",
  owner: () => HOST_OWNER,
  rows: (s) => s.checkups(),
  columns: [
    chk({ name: 'name', type: 'TEXT', field: 'name', description: 'Check name (as `launcher doctor` shows it)' }),
    chk({ name: 'status', type: 'TEXT', field: 'status', description: 'pass, warn or fail' }),
    chk({ name: 'detail', type: 'TEXT', field: 'detail', description: 'What was checked and found (lines joined by newlines)' }),
    chk({ name: 'checked_at', type: 'BIGINT', field: 'checked_at', description: 'Unix seconds of the latest round', render: secs }),
    chk({
      name: 'changed_at',
      type: 'BIGINT',
      field: 'changed_at',
      description: 'Unix seconds the check first showed this status',
      render: secs,
    }),
    chk({ name: 'previous_status', type: 'TEXT', field: 'previous_status', description: 'The status before changed_at, if any' }),
  ],
});

const upd = columnsOf<UpdateState>();
export const updatesTable = defineStateTable<UpdateState, StateSource>()({
  name: 'kolide_launcher_updates',
  description: 'osqueryd updates (issue 17): per registration the version it runs, is assigned, ran before, is pinned to, will get.',
  owner: (r) => r.registration_id,
  rows: (s, ids) => s.updates(ids),
  columns: [
    upd({ name: 'registration_id', type: 'TEXT', field: 'registration_id', description: 'Registration id' }),
    upd({ name: 'running_version', type: 'TEXT', field: 'running_version', description: 'Version its osqueryd reports' }),
    upd({
      name: 'assigned_version',
      type: 'TEXT',
      field: 'assigned_version',
      description: 'Installed version it runs (empty: osqueryd_path)',
    }),
    upd({
      name: 'previous_version',
      type: 'TEXT',
      field: 'previous_version',
      description: 'Version before the last move (rollback target)',
    }),
    upd({ name: 'pinned_version', type: 'TEXT', field: 'pinned_version', description: 'Pinned version (left out of rollouts)' }),
    upd({ name: 'pin_source', type: 'TEXT', field: 'pin_source', description: 'config or api' }),
    upd({ name: 'pending_version', type: 'TEXT', field: 'pending_version', description: 'Version a running rollout will move it to' }),
    upd({ name: 'channel', type: 'TEXT', field: 'channel', description: 'stable, beta or nightly' }),
    upd({ name: 'available_version', type: 'TEXT', field: 'available_version', description: 'Version the channel points at' }),
    upd({ name: 'rollout_version', type: 'TEXT', field: 'rollout_version', description: 'Version of the last rollout' }),
    upd({ name: 'rollout_state', type: 'TEXT', field: 'rollout_state', description: 'running, done or rolled_back' }),
    upd({ name: 'last_check_at', type: 'BIGINT', field: 'last_check_at', description: 'Unix seconds of the last check', render: secs }),
    upd({ name: 'last_check_result', type: 'TEXT', field: 'last_check_result', description: 'ok, refused, unreachable or failed' }),
    upd({ name: 'last_check_error', type: 'TEXT', field: 'last_check_error', description: 'Why the last check was refused or failed' }),
    upd({ name: 'bad_versions', type: 'TEXT', field: 'bad_versions', description: 'Versions marked bad on this host' }),
  ],
});

/** Every state table over the supervisor's StateSource, served by each instance's extension. */
export const STATE_TABLES = [
  registrationsTable,
  instancesTable,
  historyTable,
  logBuffersTable,
  quarantineTable,
  checkupsTable,
  updatesTable,
] as const;

/** The table plugins one instance's extension serves, scoped to what that instance may see. */
export function stateTablePlugins(source: () => StateSource, scope: Scope): TablePlugin[] {
  return STATE_TABLES.map((t) => stateTablePlugin<unknown, StateSource>(t, source, scope));
}
