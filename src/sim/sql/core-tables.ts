/**
 * The core tables the stand-in serves, with osquery's column names and
 * types, generated from this machine or the daemon's own state on each query.
 */
import { calendarTime } from '../host.js';
import type { GeneratedRow, TableProvider } from './engine.js';
import { ColumnOptions, equalityValues } from '../../osquery/plugins.js';
import type { TableContext } from './constraints.js';
import type { ColumnSpec } from './schema.js';
import { readOsVersion, readProcesses, readSystemInfo, readUptimeSeconds, readUsers } from './proc.js';
import { readKernelInfo, readPlatformInfo } from './platform.js';

/** What the osquery_* tables report about the running daemon. */
export interface CoreState {
  pid: number;
  startTime: number;
  hostUuid: string;
  instanceId: string;
  version: string;
  socketPath: string;
  /** osquery_info.extensions: "active" or "disabled". */
  extensionsState: string;
  buildDistro: string;
  configHash(): string;
  configValid(): boolean;
  extensions(): Array<{ uuid: number; name: string; version: string; sdk_version: string; min_sdk_version: string }>;
  flagRows(): GeneratedRow[];
  registryRows(): GeneratedRow[];
  scheduleRows(): GeneratedRow[];
}

type ColDef = [name: string, type: string, options?: number];

function table(name: string, cols: ColDef[], generate: (ctx: TableContext) => GeneratedRow[]): TableProvider {
  const columns: ColumnSpec[] = cols.map(([n, type, options = 0]) => ({ name: n, type, options }));
  return { spec: { name, columns }, generate };
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Linux platform mask: POSIX (1) | LINUX (8). */
const PLATFORM_MASK = 9;

export function coreTables(state: CoreState): TableProvider[] {
  const T = 'TEXT';
  const I = 'INTEGER';
  const B = 'BIGINT';
  return [
    table(
      'osquery_info',
      [
        ['pid', I],
        ['uuid', T],
        ['instance_id', T],
        ['version', T],
        ['config_hash', T],
        ['config_valid', I],
        ['extensions', T],
        ['build_platform', T],
        ['build_distro', T],
        ['start_time', I],
        ['watcher', I],
        ['platform_mask', I],
      ],
      () => [
        {
          pid: state.pid,
          uuid: state.hostUuid,
          instance_id: state.instanceId,
          version: state.version,
          config_hash: state.configHash(),
          config_valid: state.configValid() ? 1 : 0,
          extensions: state.extensionsState,
          build_platform: 'linux',
          build_distro: state.buildDistro,
          start_time: state.startTime,
          watcher: -1,
          platform_mask: PLATFORM_MASK,
        },
      ],
    ),
    table(
      'osquery_extensions',
      [
        ['uuid', B],
        ['name', T],
        ['version', T],
        ['sdk_version', T],
        ['path', T],
        ['type', T],
      ],
      () => [
        { uuid: 0, name: 'core', version: state.version, sdk_version: '0.0.0', path: state.socketPath, type: 'core' },
        // As osqueryd: the sdk_version column shows the extension's min_sdk_version.
        ...state.extensions().map((e) => ({
          uuid: e.uuid,
          name: e.name,
          version: e.version,
          sdk_version: e.min_sdk_version,
          path: `${state.socketPath}.${e.uuid}`,
          type: 'extension',
        })),
      ],
    ),
    table(
      'osquery_flags',
      [
        ['name', T],
        ['type', T],
        ['description', T],
        ['default_value', T],
        ['value', T],
        ['shell_only', I],
      ],
      () => state.flagRows(),
    ),
    table(
      'osquery_registry',
      [
        ['registry', T],
        ['name', T],
        ['owner_uuid', I],
        ['internal', I],
        ['active', I],
      ],
      () => state.registryRows(),
    ),
    table(
      'osquery_schedule',
      [
        ['name', T],
        ['query', T],
        ['interval', I],
        ['executions', B],
        ['last_executed', B],
        ['denylisted', I],
        ['output_size', B],
        ['wall_time', B],
        ['wall_time_ms', B],
        ['last_wall_time_ms', B],
        ['user_time', B],
        ['last_user_time', B],
        ['system_time', B],
        ['last_system_time', B],
        ['average_memory', B],
        ['last_memory', B],
      ],
      () => state.scheduleRows(),
    ),
    table(
      'time',
      [
        ['weekday', T],
        ['year', I],
        ['month', I],
        ['day', I],
        ['hour', I],
        ['minutes', I],
        ['seconds', I],
        ['timezone', T],
        ['local_timezone', T],
        ['unix_time', I],
        ['timestamp', T],
        ['datetime', T],
        ['iso_8601', T],
      ],
      () => {
        const d = new Date();
        const iso = `${d.toISOString().slice(0, 19)}Z`;
        const unix = Math.floor(d.getTime() / 1000);
        return [
          {
            weekday: WEEKDAYS[d.getUTCDay()],
            year: d.getUTCFullYear(),
            month: d.getUTCMonth() + 1,
            day: d.getUTCDate(),
            hour: d.getUTCHours(),
            minutes: d.getUTCMinutes(),
            seconds: d.getUTCSeconds(),
            timezone: 'UTC',
            local_timezone: Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC',
            unix_time: unix,
            timestamp: calendarTime(d),
            datetime: iso,
            iso_8601: iso,
          },
        ];
      },
    ),
    table(
      'uptime',
      [
        ['days', I],
        ['hours', I],
        ['minutes', I],
        ['seconds', I],
        ['total_seconds', B],
      ],
      () => {
        const s = readUptimeSeconds();
        return [
          {
            days: Math.floor(s / 86400),
            hours: Math.floor((s % 86400) / 3600),
            minutes: Math.floor((s % 3600) / 60),
            seconds: s % 60,
            total_seconds: s,
          },
        ];
      },
    ),
    table(
      'system_info',
      [
        ['hostname', T],
        ['uuid', T],
        ['cpu_type', T],
        ['cpu_subtype', T],
        ['cpu_brand', T],
        ['cpu_physical_cores', I],
        ['cpu_logical_cores', I],
        ['cpu_microcode', T],
        ['physical_memory', B],
        ['hardware_vendor', T],
        ['hardware_model', T],
        ['hardware_version', T],
        ['hardware_serial', T],
        ['board_vendor', T],
        ['board_model', T],
        ['board_version', T],
        ['board_serial', T],
        ['computer_name', T],
        ['local_hostname', T],
      ],
      () => [readSystemInfo(state.hostUuid)],
    ),
    table(
      'os_version',
      [
        ['name', T],
        ['version', T],
        ['major', I],
        ['minor', I],
        ['patch', I],
        ['build', T],
        ['platform', T],
        ['platform_like', T],
        ['codename', T],
        ['arch', T],
      ],
      () => [readOsVersion()],
    ),
    table(
      'platform_info',
      [
        ['vendor', T],
        ['version', T],
        ['date', T],
        ['revision', T],
        ['extra', T],
        ['firmware_type', T],
        ['address', T],
        ['size', T],
        ['volume_size', I],
      ],
      () => [readPlatformInfo()],
    ),
    table(
      'kernel_info',
      [
        ['version', T],
        ['arguments', T],
        ['path', T],
        ['device', T],
      ],
      () => [readKernelInfo()],
    ),
    table(
      'processes',
      [
        ['pid', B, ColumnOptions.INDEX],
        ['name', T],
        ['path', T],
        ['cmdline', T],
        ['state', T],
        ['cwd', T],
        ['root', T],
        ['uid', B],
        ['gid', B],
        ['euid', B],
        ['egid', B],
        ['suid', B],
        ['sgid', B],
        ['on_disk', I],
        ['wired_size', B],
        ['resident_size', B],
        ['total_size', B],
        ['user_time', B],
        ['system_time', B],
        ['disk_bytes_read', B],
        ['disk_bytes_written', B],
        ['start_time', B],
        ['parent', B],
        ['pgroup', B],
        ['threads', I],
        ['nice', I],
        ['cgroup_path', T],
      ],
      (ctx) => {
        const pids = equalityValues(ctx, 'pid')
          ?.map(Number)
          .filter((n) => Number.isInteger(n) && n > 0);
        return readProcesses(pids);
      },
    ),
    table(
      'users',
      [
        ['uid', B, ColumnOptions.INDEX],
        ['gid', B],
        ['uid_signed', B],
        ['gid_signed', B],
        ['username', T, ColumnOptions.INDEX],
        ['description', T],
        ['directory', T],
        ['shell', T],
        ['uuid', T],
      ],
      () => readUsers(),
    ),
  ];
}
