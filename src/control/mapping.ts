/**
 * The one place where API messages (src/control/gen) and the domain types of
 * src/control/target.ts are converted into each other. The server uses the
 * `to*Message` functions, the client the `from*Message` ones.
 *
 * Wire conventions: int64 arrives as a decimal string (LOADER_OPTIONS.longs),
 * absent `optional` scalars are `undefined`, empty strings mean "none".
 */
import type { Instance, Instance__Output } from './gen/launcher/v1/Instance.js';
import type { Run, Run__Output } from './gen/launcher/v1/Run.js';
import type { OutputLine, OutputLine__Output } from './gen/launcher/v1/OutputLine.js';
import type { GetVersionResponse__Output } from './gen/launcher/v1/GetVersionResponse.js';
import type { HealthResponse, HealthResponse__Output } from './gen/launcher/v1/HealthResponse.js';
import type { AddRegistrationRequest, AddRegistrationRequest__Output } from './gen/launcher/v1/AddRegistrationRequest.js';
import type { Row__Output } from './gen/launcher/v1/Row.js';
import type { DeviceState as DeviceStateMessage, DeviceState__Output } from './gen/launcher/v1/DeviceState.js';
import type { AddRegistrationInput, DeviceState, HealthInfo, InstanceInfo, LimitMode, RunRecord } from './target.js';
import { fromIsolationMessage, toIsolationMessage } from './isolation-mapping.js';

/** One output line as a client sees it. */
export interface OutputLineView {
  seq: number;
  stream: 'stdout' | 'stderr';
  text: string;
  time: number;
  missed: number;
  run_id: string;
}

export interface ServerVersionView {
  serverVersion: string;
  apiVersion: string;
  features: string[];
  callerSubject: string;
  callerRole: string;
}

function optionalNumber(value: number | string | undefined | null): number | null {
  if (value === undefined || value === null || value === '') return null;
  return Number(value);
}

function someOrUndefined<T>(value: T | null): T | undefined {
  return value === null ? undefined : value;
}

function nonEmpty(value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value;
}

function toDeviceMessage(d: DeviceState): DeviceStateMessage {
  return { state: d.state, error: d.error ?? '', since_unix_ms: someOrUndefined(d.since) };
}

/** An older server sends no device state: shown as unknown, not as enrolled. */
function fromDeviceMessage(msg: DeviceState__Output | null | undefined): DeviceState {
  return {
    state: (msg?.state || 'unknown') as DeviceState['state'],
    error: nonEmpty(msg?.error),
    since: optionalNumber(msg?.since_unix_ms),
  };
}

export function toInstanceMessage(info: InstanceInfo): Instance {
  return {
    id: info.id,
    state: info.state,
    pid: someOrUndefined(info.pid),
    run_id: info.run_id ?? '',
    started_at_unix_ms: someOrUndefined(info.started_at),
    connected_at_unix_ms: someOrUndefined(info.connected_at),
    uptime_seconds: info.uptime_seconds,
    healthy: info.healthy,
    restarts: info.restarts,
    last_error: info.last_error ?? '',
    limits: {
      memory_mb: someOrUndefined(info.limits.memory_mb),
      cpu_percent: someOrUndefined(info.limits.cpu_percent),
      mode: info.limits.mode,
    },
    buffers: {
      result_count: info.buffers.result_count,
      status_count: info.buffers.status_count,
      bytes: info.buffers.bytes,
      dropped: info.buffers.dropped,
    },
    osqueryd_path: info.osqueryd_path ?? '',
    osqueryd_version: info.osqueryd_version ?? '',
    device: toDeviceMessage(info.device),
    device_url: info.device_url,
    isolation: {
      mode: info.isolation?.mode ?? '',
      reason: info.isolation?.reason ?? '',
      disabled_tables: info.isolation?.disabled_tables ? info.isolation.disabled_tables.split(',') : [],
    },
  };
}

export function fromInstanceMessage(msg: Instance__Output): InstanceInfo {
  const mode = msg.limits?.mode ?? '';
  return {
    id: msg.id,
    state: msg.state,
    pid: optionalNumber(msg.pid),
    run_id: nonEmpty(msg.run_id),
    started_at: optionalNumber(msg.started_at_unix_ms),
    connected_at: optionalNumber(msg.connected_at_unix_ms),
    uptime_seconds: msg.uptime_seconds,
    healthy: msg.healthy,
    restarts: msg.restarts,
    last_error: nonEmpty(msg.last_error),
    limits: {
      memory_mb: optionalNumber(msg.limits?.memory_mb),
      cpu_percent: optionalNumber(msg.limits?.cpu_percent),
      // A newer server may report a mode this client does not know: kept as is, for display.
      mode: (mode || 'none') as LimitMode,
    },
    buffers: {
      result_count: Number(msg.buffers?.result_count ?? 0),
      status_count: Number(msg.buffers?.status_count ?? 0),
      bytes: Number(msg.buffers?.bytes ?? 0),
      dropped: Number(msg.buffers?.dropped ?? 0),
    },
    osqueryd_path: nonEmpty(msg.osqueryd_path),
    osqueryd_version: nonEmpty(msg.osqueryd_version),
    device: fromDeviceMessage(msg.device),
    device_url: msg.device_url ?? '',
    isolation: {
      mode: (msg.isolation?.mode ?? '') as InstanceInfo['isolation']['mode'],
      reason: nonEmpty(msg.isolation?.reason),
      disabled_tables: (msg.isolation?.disabled_tables ?? []).join(','),
    },
  };
}

export function toRunMessage(run: RunRecord): Run {
  return {
    registration_id: run.registration_id,
    run_id: run.run_id,
    osqueryd_path: run.osqueryd_path,
    osqueryd_version: run.version ?? '',
    pid: someOrUndefined(run.pid),
    start_time_unix_ms: run.start_time,
    connect_time_unix_ms: someOrUndefined(run.connect_time),
    exit_time_unix_ms: someOrUndefined(run.exit_time),
    exit_code: someOrUndefined(run.exit_code),
    signal: run.signal ?? '',
    error: run.error ?? '',
  };
}

export function fromRunMessage(msg: Run__Output): RunRecord {
  return {
    registration_id: msg.registration_id,
    run_id: msg.run_id,
    osqueryd_path: msg.osqueryd_path,
    version: nonEmpty(msg.osqueryd_version),
    pid: optionalNumber(msg.pid),
    start_time: Number(msg.start_time_unix_ms),
    connect_time: optionalNumber(msg.connect_time_unix_ms),
    exit_time: optionalNumber(msg.exit_time_unix_ms),
    exit_code: optionalNumber(msg.exit_code),
    signal: nonEmpty(msg.signal),
    error: nonEmpty(msg.error),
  };
}

export function toOutputLineMessage(
  line: { seq: number; stream: string; text: string; time: number; missed: number },
  runId: string,
): OutputLine {
  return { seq: line.seq, stream: line.stream, text: line.text, time_unix_ms: line.time, missed: line.missed, run_id: runId };
}

export function fromOutputLineMessage(msg: OutputLine__Output): OutputLineView {
  return {
    seq: Number(msg.seq),
    stream: msg.stream === 'stderr' ? 'stderr' : 'stdout',
    text: msg.text,
    time: Number(msg.time_unix_ms),
    missed: Number(msg.missed),
    run_id: msg.run_id,
  };
}

export function toHealthMessage(health: HealthInfo): HealthResponse {
  return {
    healthy: health.healthy,
    instances: health.instances.map((i) => ({
      id: i.id,
      healthy: i.healthy,
      state: i.state,
      ...(i.device ? { device: toDeviceMessage(i.device) } : {}),
    })),
  };
}

export function fromHealthMessage(msg: HealthResponse__Output): HealthInfo {
  return {
    healthy: msg.healthy,
    instances: msg.instances.map((i) => ({ id: i.id, healthy: i.healthy, state: i.state, device: fromDeviceMessage(i.device) })),
  };
}

export function fromVersionMessage(msg: GetVersionResponse__Output): ServerVersionView {
  return {
    serverVersion: msg.server_version,
    apiVersion: msg.api_version,
    features: [...msg.features],
    callerSubject: msg.caller_subject,
    callerRole: msg.caller_role,
  };
}

export function toAddRegistrationMessage(input: AddRegistrationInput): AddRegistrationRequest {
  const msg: AddRegistrationRequest = { id: input.id, osquery_flags: input.osqueryFlags ?? [] };
  if (input.enrollSecret !== undefined) msg.enroll_secret = input.enrollSecret;
  if (input.enrollSecretPath !== undefined) msg.enroll_secret_path = input.enrollSecretPath;
  if (input.limits) msg.limits = { memory_mb: input.limits.memory_mb, cpu_percent: input.limits.cpu_percent };
  if (input.replace) msg.replace = true;
  if (input.isolation) msg.isolation = toIsolationMessage(input.isolation);
  return msg;
}

/** Request fields as received; validation happens in validate.ts. */
export function fromAddRegistrationMessage(msg: AddRegistrationRequest__Output): AddRegistrationInput {
  const input: AddRegistrationInput = { id: msg.id, osqueryFlags: [...msg.osquery_flags] };
  if (msg.replace) input.replace = true;
  if (msg.enroll_secret !== undefined) input.enrollSecret = msg.enroll_secret;
  if (msg.enroll_secret_path !== undefined) input.enrollSecretPath = msg.enroll_secret_path;
  if (msg.limits) {
    const limits: AddRegistrationInput['limits'] = {};
    if (msg.limits.memory_mb !== undefined) limits.memory_mb = msg.limits.memory_mb;
    if (msg.limits.cpu_percent !== undefined) limits.cpu_percent = msg.limits.cpu_percent;
    input.limits = limits;
  }
  if (msg.isolation) input.isolation = fromIsolationMessage(msg.isolation);
  return input;
}

export function toRowMessages(rows: Array<Record<string, string>>): Array<{ columns: Record<string, string> }> {
  return rows.map((columns) => ({ columns }));
}

export function fromRowMessages(rows: Row__Output[]): Array<Record<string, string>> {
  return rows.map((r) => ({ ...r.columns }));
}
