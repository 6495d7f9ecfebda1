/**
 * The supervisor's state tables (issue 7). Names follow launcher's where a
 * launcher table exists (`kolide_launcher_osquery_instance_history` keeps its
 * columns first, for queries written against launcher).
 */
import type { StateTable } from './table.js';
import type { InstanceInfo, LogBufferState, RegistrationState, RunRecord, StateSource } from './types.js';

const iso = (ms: number | null | undefined): string => (ms ? new Date(ms).toISOString() : '');
const secs = (ms: number | null | undefined): number | null => (ms ? Math.floor(ms / 1000) : null);

export const registrationsTable: StateTable<RegistrationState, StateSource> = {
  name: 'kolide_launcher_registrations',
  description: 'Registrations (vendor and tenants) this supervisor runs an osqueryd for.',
  owner: (r) => r.id,
  rows: (s, ids) => s.registrations(ids),
  columns: [
    { name: 'registration_id', type: 'TEXT', description: 'Registration id', value: (r) => r.id },
    { name: 'origin', type: 'TEXT', description: 'config (from the file) or runtime (enrolled through the control API)', value: (r) => r.origin },
    { name: 'enroll_secret_source', type: 'TEXT', description: 'value, file or none (the secret itself is never shown)', value: (r) => r.enroll_secret_source },
    { name: 'enroll_secret_path', type: 'TEXT', description: 'Enroll secret file, when file', value: (r) => r.enroll_secret_path },
    { name: 'memory_limit_mb', type: 'INTEGER', description: 'Requested memory limit', value: (r) => r.limits.memory_mb },
    { name: 'cpu_limit_percent', type: 'INTEGER', description: 'Requested CPU limit', value: (r) => r.limits.cpu_percent },
    { name: 'osquery_flags', type: 'TEXT', description: 'Extra osqueryd flags, space separated', value: (r) => r.osquery_flags.join(' ') },
    { name: 'created_at', type: 'BIGINT', description: 'Unix seconds the registration was added', value: (r) => secs(r.created_at) },
    { name: 'enrolled', type: 'INTEGER', description: '1 when a node key is held', value: (r) => r.enrolled },
    { name: 'disabled', type: 'INTEGER', description: '1 when the device server answered disable_device', value: (r) => r.disabled },
  ],
};

export const instancesTable: StateTable<InstanceInfo, StateSource> = {
  name: 'kolide_launcher_instances',
  description: 'One row per supervised osquery instance: its current run, health and limits.',
  owner: (r) => r.id,
  rows: (s, ids) => s.instances(ids),
  columns: [
    { name: 'registration_id', type: 'TEXT', description: 'Registration id', value: (r) => r.id },
    { name: 'state', type: 'TEXT', description: 'Supervisor state of the instance', value: (r) => r.state },
    { name: 'pid', type: 'INTEGER', description: 'osqueryd pid', value: (r) => r.pid },
    { name: 'run_id', type: 'TEXT', description: 'Current run id (ULID)', value: (r) => r.run_id },
    { name: 'started_at', type: 'BIGINT', description: 'Unix seconds the run started', value: (r) => secs(r.started_at) },
    { name: 'connected_at', type: 'BIGINT', description: 'Unix seconds the extension connected', value: (r) => secs(r.connected_at) },
    { name: 'uptime_seconds', type: 'BIGINT', description: 'Seconds since the run started', value: (r) => r.uptime_seconds },
    { name: 'healthy', type: 'INTEGER', description: '1 when the last health check passed', value: (r) => r.healthy },
    { name: 'restarts', type: 'INTEGER', description: 'Restarts since the supervisor started', value: (r) => r.restarts },
    { name: 'last_error', type: 'TEXT', description: 'Last error of this registration', value: (r) => r.last_error },
    { name: 'limit_mode', type: 'TEXT', description: 'cgroup-v2, cgroup-v1, watchdog or none', value: (r) => r.limits.mode },
    { name: 'memory_limit_mb', type: 'INTEGER', description: 'Memory limit in force', value: (r) => r.limits.memory_mb },
    { name: 'cpu_limit_percent', type: 'INTEGER', description: 'CPU limit in force', value: (r) => r.limits.cpu_percent },
    { name: 'buffered_results', type: 'INTEGER', description: 'Result logs waiting for delivery', value: (r) => r.buffers.result_count },
    { name: 'buffered_statuses', type: 'INTEGER', description: 'Status logs waiting for delivery', value: (r) => r.buffers.status_count },
    { name: 'buffered_bytes', type: 'BIGINT', description: 'Bytes waiting for delivery', value: (r) => r.buffers.bytes },
    { name: 'dropped_logs', type: 'BIGINT', description: 'Logs dropped by the buffer cap', value: (r) => r.buffers.dropped },
    { name: 'osqueryd_path', type: 'TEXT', description: 'osqueryd binary', value: (r) => r.osqueryd_path },
    { name: 'osqueryd_version', type: 'TEXT', description: 'osqueryd version', value: (r) => r.osqueryd_version },
  ],
};

export const historyTable: StateTable<RunRecord, StateSource> = {
  name: 'kolide_launcher_osquery_instance_history',
  description: 'Past and current osqueryd runs, newest first (launcher-compatible columns first).',
  owner: (r) => r.registration_id,
  rows: (s, ids) => s.history(ids),
  columns: [
    { name: 'enrollment_id', type: 'TEXT', description: 'Registration id (launcher name)', value: (r) => r.registration_id },
    { name: 'instance_run_id', type: 'TEXT', description: 'Run id', value: (r) => r.run_id },
    { name: 'start_time', type: 'TEXT', description: 'RFC 3339 start time', value: (r) => iso(r.start_time) },
    { name: 'connect_time', type: 'TEXT', description: 'RFC 3339 time the extension connected', value: (r) => iso(r.connect_time) },
    { name: 'exit_time', type: 'TEXT', description: 'RFC 3339 exit time', value: (r) => iso(r.exit_time) },
    { name: 'hostname', type: 'TEXT', description: 'Host name at launch', value: (r) => r.hostname },
    { name: 'instance_id', type: 'TEXT', description: "osquery's instance id", value: (r) => r.instance_id },
    { name: 'version', type: 'TEXT', description: 'osqueryd version', value: (r) => r.version },
    { name: 'errors', type: 'TEXT', description: 'Error that ended the run', value: (r) => r.error },
    { name: 'registration_id', type: 'TEXT', description: 'Registration id', value: (r) => r.registration_id },
    { name: 'pid', type: 'INTEGER', description: 'osqueryd pid', value: (r) => r.pid },
    { name: 'osqueryd_path', type: 'TEXT', description: 'osqueryd binary', value: (r) => r.osqueryd_path },
    { name: 'exit_code', type: 'INTEGER', description: 'Exit code, when it exited', value: (r) => r.exit_code },
    { name: 'signal', type: 'TEXT', description: 'Signal that ended it, when killed', value: (r) => r.signal },
  ],
};

export const logBuffersTable: StateTable<LogBufferState, StateSource> = {
  name: 'kolide_launcher_log_buffers',
  description: 'Durable log buffers between osqueryd and the device server.',
  owner: (r) => r.registration_id,
  rows: (s, ids) => s.logBuffers(ids),
  columns: [
    { name: 'registration_id', type: 'TEXT', description: 'Registration id', value: (r) => r.registration_id },
    { name: 'log_type', type: 'TEXT', description: 'result or status', value: (r) => r.log_type },
    { name: 'count', type: 'BIGINT', description: 'Logs waiting', value: (r) => r.count },
    { name: 'bytes', type: 'BIGINT', description: 'Bytes waiting', value: (r) => r.bytes },
    { name: 'dropped', type: 'BIGINT', description: 'Logs dropped by the cap, ever', value: (r) => r.dropped },
    { name: 'oldest_age_seconds', type: 'BIGINT', description: 'Age of the oldest waiting log', value: (r) => r.oldest_age_seconds },
  ],
};

/** Every state table served by each instance's extension. */
export const STATE_TABLES = [registrationsTable, instancesTable, historyTable, logBuffersTable] as const;

import { stateTablePlugin, type Scope } from './table.js';
import type { TablePlugin } from '../osquery/plugins.js';

/** The table plugins one instance's extension serves, scoped to what that instance may see. */
export function stateTablePlugins(source: () => StateSource, scope: Scope): TablePlugin[] {
  return [
    stateTablePlugin(registrationsTable, source, scope),
    stateTablePlugin(instancesTable, source, scope),
    stateTablePlugin(historyTable, source, scope),
    stateTablePlugin(logBuffersTable, source, scope),
  ];
}
