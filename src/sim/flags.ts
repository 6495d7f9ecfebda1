/**
 * The stand-in's flag table: the one place that lists osqueryd's flags with
 * their gflags type, default and whether they are CLI-only (docs/protocol/osquery-extensions.md#flags).
 * It feeds command-line parsing (cli.ts), config `options` (config.ts), the
 * manager's `options()` and the `osquery_flags` table. It imports nothing
 * heavy: `--version` and flag errors are answered before Thrift loads.
 *
 * Defaults are osqueryd's Linux defaults. `builtin` flags belong to gflags
 * itself (`--flagfile`, `--version`, `--help`): they are parsed but, as in
 * osqueryd, are not osquery flags and so never appear in `options()`.
 */
export type FlagType = 'bool' | 'string' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'double';

export interface FlagDef {
  readonly name: string;
  readonly type: FlagType;
  readonly default: string;
  /** Settable on the command line only; a config `options` entry is ignored. */
  readonly cli: boolean;
  readonly hidden?: boolean;
  readonly builtin?: boolean;
  readonly description: string;
}

const f = (name: string, type: FlagType, def: string, cli: boolean, description: string, extra: Partial<FlagDef> = {}): FlagDef => ({
  name,
  type,
  default: def,
  cli,
  description,
  ...extra,
});

export const FLAG_TABLE: readonly FlagDef[] = [
  // gflags built-ins
  f('flagfile', 'string', '', true, 'Load flags from file, one per line', { builtin: true }),
  f('version', 'bool', 'false', true, 'Print the version and exit', { builtin: true }),
  f('help', 'bool', 'false', true, 'Show help and exit', { builtin: true }),
  // extensions
  f('extensions_socket', 'string', '/var/osquery/osquery.em', true, 'Path to the extensions UNIX domain socket'),
  f('extensions_timeout', 'string', '3', true, 'Seconds to wait for autoloaded or required extensions'),
  f('extensions_interval', 'string', '3', true, 'Seconds delay between connectivity checks'),
  f('extensions_require', 'string', '', true, 'Comma-separated list of required extension names'),
  f('extensions_autoload', 'string', '/etc/osquery/extensions.load', true, 'Optional path to a list of autoloaded & managed extensions'),
  f('extensions_default_index', 'bool', 'true', false, 'Enable INDEX on all extension table columns'),
  f('disable_extensions', 'bool', 'false', true, 'Disable extension API'),
  f('enable_extensions_watchdog', 'bool', 'false', true, 'Enable watchdog limits for managed extensions'),
  f('thrift_timeout', 'uint32', '300', false, 'Thrift socket timeout in seconds', { hidden: true }),
  f('thrift_string_size_limit', 'uint32', '0', false, 'Thrift string size limit in bytes', { hidden: true }),
  f('thrift_verbose', 'bool', 'false', false, 'Verbose Thrift logging', { hidden: true }),
  // config
  f('config_plugin', 'string', 'filesystem', true, 'Config plugin name'),
  f('config_path', 'string', '/etc/osquery/osquery.conf', true, 'Path to JSON config file'),
  f('config_refresh', 'uint64', '0', true, 'Optional interval in seconds to re-read configuration'),
  f('config_accelerated_refresh', 'uint64', '300', true, 'Interval to wait if reading a configuration fails'),
  f('config_check', 'bool', 'false', true, 'Check the format of an osquery config and exit'),
  f('config_dump', 'bool', 'false', true, 'Dump the contents of the configuration'),
  f('config_enable_backup', 'bool', 'false', true, 'Backup config and use it when refresh fails'),
  f('config_tls_endpoint', 'string', '', true, 'TLS/HTTPS endpoint for config retrieval'),
  // logger
  f('logger_plugin', 'string', 'filesystem', true, 'Logger plugin name'),
  f('logger_path', 'string', '/var/log/osquery/', false, 'Directory path for ERROR/WARN/INFO and results logging'),
  f('logger_mode', 'int32', '420', false, "Decimal mode for log files (default '0644')"),
  f('logger_min_status', 'int32', '0', false, 'Minimum level for status log recording'),
  f('logger_min_stderr', 'int32', '0', false, 'Minimum level for statuses written to stderr'),
  f('logger_stderr', 'bool', 'true', false, 'Write status logs to stderr'),
  f('logger_event_type', 'bool', 'true', false, 'Log scheduled results as events'),
  f('logger_snapshot_event_type', 'bool', 'false', false, 'Log scheduled snapshot results as events'),
  f('logger_numerics', 'bool', 'false', false, 'Use numeric JSON syntax for numeric values'),
  f('logger_rotate', 'bool', 'false', false, 'Enable filesystem logger rotation'),
  f('logger_tls_endpoint', 'string', '', false, 'TLS/HTTPS endpoint for results logging'),
  f('logger_tls_period', 'uint64', '4', false, 'Seconds between flushing logs over TLS/HTTPS'),
  f('buffered_log_max', 'uint64', '1000000', false, 'Maximum number of logs buffered by forwarders'),
  f('disable_logging', 'bool', 'false', false, 'Disable ERROR/INFO logging'),
  f('verbose', 'bool', 'false', false, 'Enable verbose informational messages'),
  f('utc', 'bool', 'true', false, 'Convert all UNIX times to UTC', { hidden: true }),
  // distributed
  f('distributed_plugin', 'string', 'tls', true, 'Distributed plugin name'),
  f('disable_distributed', 'bool', 'true', false, 'Disable distributed queries'),
  f('distributed_interval', 'uint64', '60', false, 'Seconds between polling for new queries'),
  f('distributed_denylist_duration', 'uint64', '86400', false, 'Seconds to denylist distributed queries that caused a crash'),
  f('distributed_tls_read_endpoint', 'string', '', false, 'TLS/HTTPS endpoint for distributed query retrieval'),
  f('distributed_tls_write_endpoint', 'string', '', false, 'TLS/HTTPS endpoint for distributed query results'),
  // daemon, database, identity
  f('pidfile', 'string', '/var/run/osqueryd.pidfile', true, 'Path to the daemon pidfile mutex'),
  f('force', 'bool', 'false', true, 'Force osqueryd to kill a previously-running daemon'),
  f('daemonize', 'bool', 'false', true, 'Attempt to daemonize (POSIX only)'),
  f('database_path', 'string', '/var/osquery/osquery.db', true, 'If using a disk-based backing store, specify a path'),
  f('disable_database', 'bool', 'false', false, 'Disable the persistent RocksDB storage'),
  f('ephemeral', 'bool', 'false', true, 'Skip pidfile and database state checks', { hidden: true }),
  f(
    'host_identifier',
    'string',
    'hostname',
    false,
    'Field used to identify the host running osquery (hostname, uuid, instance, ephemeral, specified)',
  ),
  f('specified_identifier', 'string', '', false, 'Field used to specify the host_identifier when set to "specified"'),
  f('disable_events', 'bool', 'false', false, 'Disable osquery publish/subscribe system'),
  f('events_expiry', 'uint64', '3600', false, 'Timeout to expire event subscriber results'),
  f('events_max', 'uint64', '50000', false, 'Maximum number of events per type to buffer'),
  f('augeas_lenses', 'string', '/opt/osquery/share/osquery/lenses', false, 'Directory path to augeas lenses files'),
  f('nullvalue', 'string', '', false, "Set string for NULL values, default ''"),
  f('alarm_timeout', 'uint64', '15', true, 'Seconds to allow for shutdown'),
  f('allow_unsafe', 'bool', 'false', true, 'Allow unsafe executable permissions'),
  f('disable_tables', 'string', '', false, 'Comma-delimited list of table names to be disabled'),
  f('disable_carver', 'bool', 'true', false, 'Disable the osquery file carver (function always returns false)'),
  f('enable_tables', 'string', '', false, 'Comma-delimited list of table names to be enabled'),
  f('table_delay', 'uint64', '0', false, 'Add an optional microsecond delay between table scans'),
  f('read_max', 'uint64', '52428800', false, 'Maximum file read size'),
  f('disable_caching', 'bool', 'false', false, 'Disable scheduled query caching'),
  // TLS and enrollment
  f('tls_server_certs', 'string', '', false, 'Optional path to a TLS server PEM certificate(s) bundle'),
  f('tls_hostname', 'string', '', false, 'TLS/HTTPS hostname for Config, Logger, and Enroll plugins'),
  f('tls_client_cert', 'string', '', false, 'Optional path to a TLS client-auth PEM certificate'),
  f('tls_client_key', 'string', '', false, 'Optional path to a TLS client-auth PEM private key'),
  f('enroll_secret_path', 'string', '', false, 'Path to an optional client enrollment-auth secret'),
  f('enroll_secret_env', 'string', '', false, 'Name of environment variable holding enrollment-auth secret'),
  f('enroll_tls_endpoint', 'string', '', false, 'TLS/HTTPS endpoint for client enrollment'),
  // watchdog
  f('disable_watchdog', 'bool', 'false', true, 'Disable userland watchdog process'),
  f('watchdog_level', 'int32', '0', true, 'Performance limit level (0=normal, 1=restrictive, -1=off)'),
  f('watchdog_memory_limit', 'uint64', '0', true, 'Override watchdog profile memory limit (e.g., 300, for 300MB)'),
  f('watchdog_utilization_limit', 'uint64', '0', true, 'Override watchdog profile CPU utilization limit'),
  f('watchdog_latency_limit', 'uint64', '0', true, 'Override watchdog profile CPU utilization latency limit'),
  f('watchdog_delay', 'uint64', '60', true, 'Initial delay in seconds before watchdog starts enforcing'),
  f('watchdog_forced_shutdown_delay', 'uint64', '4', true, 'Seconds that the watchdog will wait to do a forced shutdown'),
  f('watchdog_max_delay', 'uint64', '600', true, 'Max delay in seconds between worker respawns', { hidden: true }),
  // schedule, packs, decorators
  f('schedule_default_interval', 'uint64', '3600', false, 'Query interval to use if none is provided'),
  f('schedule_splay_percent', 'uint64', '10', false, 'Percent to splay config times'),
  f('schedule_max_drift', 'uint64', '60', false, 'Max time drift in seconds'),
  f('schedule_epoch', 'uint64', '0', false, 'Epoch for scheduled queries'),
  f('schedule_lognames', 'bool', 'false', false, 'Log the running scheduled query name at INFO level'),
  f('pack_delimiter', 'string', '_', false, 'Delimiter for pack and query names'),
  f('pack_refresh_interval', 'uint64', '3600', false, 'Cache expiration for a packs discovery queries'),
  f('decorations_top_level', 'bool', 'false', false, 'Add decorators as top level JSON objects'),
  f('disable_decorators', 'bool', 'false', false, 'Disable log result decoration'),
];

/** Old names osqueryd still accepts on the command line. */
export const FLAG_ALIASES: Readonly<Record<string, string>> = {
  config_tls_refresh: 'config_refresh',
  config_tls_accelerated_refresh: 'config_accelerated_refresh',
};

const BY_NAME = new Map(FLAG_TABLE.map((d) => [d.name, d]));

export function findFlag(name: string): FlagDef | undefined {
  return BY_NAME.get(FLAG_ALIASES[name] ?? name);
}

const INT_RANGES: Partial<Record<FlagType, [bigint, bigint]>> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

/**
 * A raw value in gflags' canonical string form, or an error text in gflags'
 * wording. Bools accept true/false/yes/no/1/0/t/f/y/n in any case.
 */
export function normalizeFlagValue(def: FlagDef, raw: string): { value: string } | { error: string } {
  const illegal = { error: `ERROR: illegal value '${raw}' specified for ${def.type} flag '${def.name}'` };
  switch (def.type) {
    case 'string':
      return { value: raw };
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['true', 't', 'yes', 'y', '1'].includes(v)) return { value: 'true' };
      if (['false', 'f', 'no', 'n', '0'].includes(v)) return { value: 'false' };
      return illegal;
    }
    case 'double': {
      const v = raw.trim();
      if (v === '' || !Number.isFinite(Number(v))) return illegal;
      return { value: String(Number(v)) };
    }
    default: {
      const v = raw.trim();
      if (!/^[-+]?(0[xX][0-9a-fA-F]+|\d+)$/.test(v)) return illegal;
      const negative = v.startsWith('-');
      const digits = v.replace(/^[-+]/, '');
      let n = BigInt(digits);
      if (negative) n = -n;
      const [lo, hi] = INT_RANGES[def.type]!;
      if (n < lo || n > hi) return illegal;
      return { value: n.toString() };
    }
  }
}

/**
 * Current flag values: defaults, overridden by the command line and by config
 * `options`; plus config `custom_*` options, which osqueryd keeps as string
 * flags with an empty default.
 */
export class FlagValues {
  private readonly values = new Map<string, string>();
  private readonly custom = new Map<string, string>();

  /** Set from the command line: every flag may be set there. */
  set(name: string, raw: string): { ok: true } | { ok: false; error: string } {
    const def = findFlag(name);
    if (!def) return { ok: false, error: `ERROR: unknown command line flag '${name}'` };
    const norm = normalizeFlagValue(def, raw);
    if ('error' in norm) return { ok: false, error: norm.error };
    this.values.set(def.name, norm.value);
    return { ok: true };
  }

  setCustom(name: string, value: string): void {
    this.custom.set(name, value);
  }

  get(name: string): string {
    const def = findFlag(name);
    if (!def) {
      const custom = this.custom.get(name);
      if (custom !== undefined) return custom;
      throw new Error(`osqueryd-sim: no such flag ${name}`);
    }
    return this.values.get(def.name) ?? def.default;
  }

  bool(name: string): boolean {
    return this.get(name) === 'true';
  }

  /**
   * Numeric value. String flags holding numbers (extensions_timeout,
   * extensions_interval) convert as osqueryd does, like C's atoi: the
   * leading integer, else 0 ("0.5" is 0).
   */
  num(name: string): number {
    const v = this.get(name);
    if (findFlag(name)?.type !== 'string') return Number(v);
    const m = /^\s*[-+]?\d+/.exec(v);
    return m ? Number(m[0]) : 0;
  }

  isDefault(name: string): boolean {
    return !this.values.has(findFlag(name)?.name ?? name);
  }

  /** Rows for `options()` and `osquery_flags`, sorted by name as osqueryd's std::map. */
  rows(): Array<{ name: string; type: string; description: string; default_value: string; value: string; shell_only: string }> {
    const rows = FLAG_TABLE.filter((d) => !d.builtin).map((d) => ({
      name: d.name,
      type: d.type,
      description: d.description,
      default_value: d.default,
      value: this.get(d.name),
      shell_only: '0',
    }));
    for (const [name, value] of this.custom) {
      rows.push({ name, type: 'string', description: 'custom option', default_value: '', value, shell_only: '0' });
    }
    return rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}
