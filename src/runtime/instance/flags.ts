/**
 * osqueryd's command line, in launcher's order (docs/protocol/device.md#command-line): our defaults,
 * then the watchdog/limits flags, then the registration's own flags, then a
 * fixed tail the registration cannot override (osquery keeps the last value
 * of a flag, and we also refuse user flags that name a tail flag).
 *
 * Plugin and extension names come from the instance's extension, so the
 * same code serves `kolide_grpc` or anything else.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LauncherError } from '../../errors.js';

/** Flags only the supervisor sets (the tail), plus `flagfile`, which could smuggle any flag in. */
export const RESERVED_FLAGS: ReadonlySet<string> = new Set([
  'pidfile',
  'database_path',
  'extensions_socket',
  'disable_extensions',
  'extensions_timeout',
  'config_plugin',
  'extensions_require',
  'flagfile',
]);

export interface ExtensionFlagNames {
  /** `--extensions_require`. */
  extensionName: string;
  /** `--config_plugin`; required — osqueryd exits 78 when it is missing, which is how a lost extension surfaces. */
  configPlugin: string;
  loggerPlugin?: string;
  distributedPlugin?: string;
}

export interface FlagTimings {
  /** `--distributed_interval` (s). Default 5. */
  distributedInterval: number;
  /** `--config_refresh` (s). Default 300. */
  configRefresh: number;
  /** `--config_accelerated_refresh` (s). Default 30. */
  configAcceleratedRefresh: number;
  /** `--extensions_timeout` (s), in the tail. Default 20. */
  extensionsTimeout: number;
  /** `--extensions_interval` (s); osquery's default (3) when undefined. */
  extensionsInterval?: number;
}

export const DEFAULT_FLAG_TIMINGS: FlagTimings = {
  distributedInterval: 5,
  configRefresh: 300,
  configAcceleratedRefresh: 30,
  extensionsTimeout: 20,
};

export interface OsquerydArgsInput {
  names: ExtensionFlagNames;
  pidfilePath: string;
  databasePath: string;
  socketPath: string;
  /** From limits.ts: watchdog limit flags, or `--disable_watchdog` and friends. */
  watchdogFlags: readonly string[];
  /** The registration's flags, validated by normaliseUserFlags. */
  userFlags: readonly string[];
  timings?: Partial<FlagTimings>;
  /** `--tls_server_certs`: the PEM bundle osqueryd's own TLS features trust (docs/protocol/device.md#command-line), when there is one. */
  tlsServerCerts?: string | undefined;
  /** `--augeas_lenses`: the lenses directory (docs/protocol/device.md#later-defaults), when it exists. */
  augeasLenses?: string | undefined;
  /** isolation.ts isolationFlags (`--disable_tables`, `--disable_carver`): after the registration's flags, so they win. */
  isolationFlags?: readonly string[];
}

/** System CA bundles, in launcher's order of preference (Linux). */
const SYSTEM_CA_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/pki/tls/cacert.pem',
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  '/etc/ssl/cert.pem',
];

/** The configured root PEM, else the first system CA bundle present, else undefined (the flag is then left out). */
export function tlsServerCertsPath(rootPem: string | undefined, candidates: readonly string[] = SYSTEM_CA_BUNDLES): string | undefined {
  if (rootPem) return rootPem;
  return candidates.find((p) => existsSync(p));
}

/** `<root>/augeas-lenses` when that directory exists (launcher installs its lenses there), else undefined. */
export function augeasLensesPath(root: string): string | undefined {
  const dir = join(root, 'augeas-lenses');
  return existsSync(dir) ? dir : undefined;
}

const FLAG_NAME = /^[a-z][a-z0-9_]*$/;

/**
 * Turn a registration's flags (`name`, `name=value`, `--name=value`) into
 * `--name[=value]`. Throws E_INVALID_ARGUMENT for malformed names and for
 * reserved flags, including gflags' `--no<name>` form of a boolean.
 */
export function normaliseUserFlags(flags: readonly string[], where = 'osquery flags'): string[] {
  return flags.map((raw) => {
    if (typeof raw !== 'string') throw new LauncherError('E_INVALID_ARGUMENT', `${where}: flag ${String(raw)} is not a string`);
    const body = raw.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    if (!FLAG_NAME.test(name))
      throw new LauncherError(
        'E_INVALID_ARGUMENT',
        `${where}: ${JSON.stringify(raw)} is not a flag (expected name[=value], name ${FLAG_NAME.source})`,
      );
    const reserved = RESERVED_FLAGS.has(name)
      ? name
      : name.startsWith('no') && RESERVED_FLAGS.has(name.slice(2))
        ? name.slice(2)
        : undefined;
    if (reserved) {
      throw new LauncherError(
        'E_INVALID_ARGUMENT',
        `${where}: ${JSON.stringify(raw)} sets --${reserved}, which the supervisor owns and cannot be overridden`,
      );
    }
    return `--${body}`;
  });
}

export function buildOsquerydArgs(input: OsquerydArgsInput): string[] {
  const t = { ...DEFAULT_FLAG_TIMINGS, ...input.timings };
  const { names } = input;
  const args: string[] = [];
  if (names.loggerPlugin) args.push(`--logger_plugin=${names.loggerPlugin}`);
  if (names.distributedPlugin) {
    args.push(
      `--distributed_plugin=${names.distributedPlugin}`,
      '--disable_distributed=false',
      `--distributed_interval=${t.distributedInterval}`,
    );
  }
  args.push('--pack_delimiter=:', '--host_identifier=uuid', '--force=true', '--utc');
  if (input.tlsServerCerts) args.push(`--tls_server_certs=${input.tlsServerCerts}`);
  args.push(...input.watchdogFlags);
  args.push(`--config_refresh=${t.configRefresh}`, `--config_accelerated_refresh=${t.configAcceleratedRefresh}`);
  if (input.augeasLenses) args.push(`--augeas_lenses=${input.augeasLenses}`);
  if (t.extensionsInterval !== undefined) args.push(`--extensions_interval=${t.extensionsInterval}`);
  args.push(...normaliseUserFlags(input.userFlags));
  args.push(...(input.isolationFlags ?? []));
  args.push(
    `--pidfile=${input.pidfilePath}`,
    `--database_path=${input.databasePath}`,
    `--extensions_socket=${input.socketPath}`,
    '--disable_extensions=false',
    `--extensions_timeout=${t.extensionsTimeout}`,
    `--config_plugin=${names.configPlugin}`,
    `--extensions_require=${names.extensionName}`,
  );
  return args;
}
