/**
 * Human-readable output of `launcher ctl`: aligned tables and key/value
 * blocks. Scripts use --json instead, which prints the API objects as is.
 */
import type { OutputLineView, ServerVersionView } from '../control/mapping.js';
import type { DeviceState, HealthInfo, InstanceInfo, RunRecord } from '../control/target.js';

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

const dash = (v: string | number | null | undefined): string => (v === null || v === undefined || v === '' ? '-' : String(v));

export function time(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString();
}

export function duration(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

function limitsText(i: InstanceInfo): string {
  const mem = i.limits.memory_mb === null ? 'mem -' : `mem ${i.limits.memory_mb}MB`;
  const cpu = i.limits.cpu_percent === null ? 'cpu -' : `cpu ${i.limits.cpu_percent}%`;
  return `${mem}, ${cpu} (${i.limits.mode})`;
}

/** issue 22: `filesystem (disabled tables: curl,…)`, `unavailable: <reason> (…)`. */
function isolationText(i: InstanceInfo): string {
  const iso = i.isolation;
  if (!iso?.mode) return '-';
  const tables = iso.disabled_tables ? ` (disabled tables: ${iso.disabled_tables})` : '';
  return `${iso.mode}${iso.reason ? `: ${iso.reason}` : ''}${tables}`;
}

/** `failing (since 12:00:00Z): enroll: …`, or the state alone. */
function deviceText(d: DeviceState | undefined): string {
  if (!d) return '-';
  if (d.state !== 'failing') return d.state;
  return `failing${d.since ? ` since ${time(d.since)}` : ''}: ${d.error ?? 'unknown error'}`;
}

export function instanceTable(instances: InstanceInfo[]): string {
  if (instances.length === 0) return 'no instances\n';
  return table(
    ['ID', 'STATE', 'HEALTHY', 'PID', 'UPTIME', 'RESTARTS', 'RUN', 'LAST ERROR', 'DEVICE'],
    instances.map((i) => [
      i.id,
      i.state,
      i.healthy ? 'yes' : 'no',
      dash(i.pid),
      i.pid === null ? '-' : duration(i.uptime_seconds),
      String(i.restarts),
      dash(i.run_id),
      dash(i.last_error),
      i.device.state,
    ]),
  );
}

export function instanceDetails(i: InstanceInfo): string {
  const rows: Array<[string, string]> = [
    ['id', i.id],
    ['state', i.state],
    ['healthy', i.healthy ? 'yes' : 'no'],
    ['device', deviceText(i.device)],
    ['device url', i.device_url || '-'],
    ['pid', dash(i.pid)],
    ['run id', dash(i.run_id)],
    ['started', time(i.started_at)],
    ['connected', time(i.connected_at)],
    ['uptime', duration(i.uptime_seconds)],
    ['restarts', String(i.restarts)],
    ['limits', limitsText(i)],
    ['isolation', isolationText(i)],
    [
      'buffers',
      `${i.buffers.result_count} results, ${i.buffers.status_count} status, ${i.buffers.bytes} bytes, ${i.buffers.dropped} dropped`,
    ],
    ['osqueryd', `${dash(i.osqueryd_path)} ${i.osqueryd_version ? `(${i.osqueryd_version})` : ''}`.trimEnd()],
    ['last error', dash(i.last_error)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}

export function historyTable(runs: RunRecord[]): string {
  if (runs.length === 0) return 'no runs\n';
  return table(
    ['RUN', 'STARTED', 'EXITED', 'EXIT', 'SIGNAL', 'PID', 'VERSION', 'ERROR'],
    runs.map((r) => [
      r.run_id,
      time(r.start_time),
      time(r.exit_time),
      dash(r.exit_code),
      dash(r.signal),
      dash(r.pid),
      dash(r.version),
      dash(r.error),
    ]),
  );
}

export function rowsTable(rows: Array<Record<string, string>>): string {
  if (rows.length === 0) return 'no rows\n';
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return table(
    columns,
    rows.map((r) => columns.map((c) => r[c] ?? '')),
  );
}

export function healthText(h: HealthInfo): string {
  const head = `launcher: ${h.healthy ? 'healthy' : 'UNHEALTHY'}\n`;
  if (h.instances.length === 0) return head;
  return (
    head +
    table(
      ['ID', 'HEALTHY', 'STATE', 'DEVICE'],
      h.instances.map((i) => [i.id, i.healthy ? 'yes' : 'no', i.state, deviceText(i.device)]),
    )
  );
}

export function versionText(v: ServerVersionView, clientApi: string): string {
  return `${[
    `server version  ${v.serverVersion}`,
    `api version     ${v.apiVersion} (client ${clientApi})`,
    `features        ${v.features.join(', ')}`,
    `you are         ${v.callerSubject} (${v.callerRole})`,
  ].join('\n')}\n`;
}

/** glog's line prefix `I1202 00:20:09.123456  4242 file.cpp:12] …`: the first letter is osquery's severity. */
const GLOG_PREFIX = /^([IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ /;

/** osquery's own severity of a line (I, W, E, F) from its glog prefix, whichever stream it came on; '-' for plain lines. */
export function outputSeverity(text: string): 'I' | 'W' | 'E' | 'F' | '-' {
  const m = GLOG_PREFIX.exec(text);
  return m ? (m[1] as 'I' | 'W' | 'E' | 'F') : '-';
}

const SEVERITY_COLOR: Record<string, string> = { W: '\x1b[33m', E: '\x1b[31m', F: '\x1b[1;31m' };

/** One osqueryd line, prefixed with its severity (coloured only when `color`: a TTY without NO_COLOR). */
export function outputLineText(line: OutputLineView, color = false): string {
  const missed = line.missed > 0 ? `… ${line.missed} line(s) missed (reader fell behind)\n` : '';
  const severity = outputSeverity(line.text);
  const paint = color ? SEVERITY_COLOR[severity] : undefined;
  return `${missed}${paint ? `${paint}${severity}\x1b[0m` : severity} ${line.text}\n`;
}
