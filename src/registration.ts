/**
 * What a registration is, defined once (issues 13, 21): its id (a branded
 * `RegistrationId`, parsed once where a value enters: config, control API,
 * store, extension), its `Limits` (one shape; `limitsFromWire`/`limitsToWire`
 * are the only conversions to and from the snake_case config/API form), the
 * `Registration` record and the rules for its values. The YAML config
 * (src/config/schema.ts), the control API (src/control/validate.ts) and the
 * store (src/store/registrations.ts) all check through these functions, so the
 * same bad value gets the same message whichever way it comes in. Imports only
 * src/errors.ts.
 *
 * Each check returns undefined when the value is fine, else the rule broken,
 * phrased to follow the field's name ("limits.memory_mb: must be ..."). A
 * secret's value is never part of a message.
 */

import { LauncherError } from './errors.js';

/**
 * The id ends up in file paths (`<root>/registrations/<id>/`) and cgroup
 * names: lower-case letters, digits, `_` and `-`, at most 63 characters,
 * starting with a letter or digit (no `.`, no `/`, no leading `-`).
 */
export const REGISTRATION_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** A registration id that passed `parseRegistrationId`. */
export type RegistrationId = string & { readonly __registrationId: unique symbol };

/** The id rule as a problem string (undefined when fine), for schema validators. */
export function registrationIdProblem(value: string): string | undefined {
  return REGISTRATION_ID_PATTERN.test(value) ? undefined : `must match ${REGISTRATION_ID_PATTERN.source} (it is used in file paths)`;
}

/** True when `value` follows the id rule (for readers that skip bad ids instead of failing). */
export function isRegistrationId(value: unknown): value is RegistrationId {
  return typeof value === 'string' && REGISTRATION_ID_PATTERN.test(value);
}

/** The one id check: throws E_INVALID_REGISTRATION_ID naming `field` and the (shortened) value. */
export function parseRegistrationId(value: unknown, field = 'registration id'): RegistrationId {
  if (typeof value === 'string' && REGISTRATION_ID_PATTERN.test(value)) return value as RegistrationId;
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value) : String(value);
  throw new LauncherError(
    'E_INVALID_REGISTRATION_ID',
    `${field} ${shown} is not a valid registration id: expected ${REGISTRATION_ID_PATTERN.source}`,
  );
}

/**
 * Per-registration resource limits. `cpuPercent` is a share of the whole
 * machine (all cores), as osquery's `--watchdog_utilization_limit` measures it.
 */
export interface Limits {
  memoryMb?: number;
  cpuPercent?: number;
}

/** Limits as the YAML config and the control API spell them. */
export interface WireLimits {
  memory_mb?: number | undefined;
  cpu_percent?: number | undefined;
}

/** URLs a backend hands out in `deployment_urls`; only non-empty ones are kept. */
export interface DeploymentUrls {
  deviceUrl?: string;
  controlServerUrl?: string;
  publisherUrl?: string;
}

/** issue 22: a registration's own isolation settings; unset fields take the vendor/tenant defaults (runtime/instance/isolation.ts). */
export interface IsolationSettings {
  mode?: 'filesystem' | 'none';
  /** osqueryd's `--disable_tables`; an empty list disables none. */
  disableTables?: string[];
}

export interface Registration {
  id: RegistrationId;
  /** Inline enroll secret, or… */
  enrollSecret?: string;
  /** …a file holding it (read by the extension, never by the runtime). */
  enrollSecretPath?: string;
  limits: Limits;
  /** Extra osqueryd flags (`name=value` or `--name=value`), appended in order. */
  osqueryFlags: string[];
  /** Filesystem isolation and table denylist (issue 22); absent: the defaults. */
  isolation?: IsolationSettings;
  /** RFC 3339 UTC. */
  createdAt: string;
  /** Set when the device server disabled this registration (disable_device): it is kept but not launched. */
  disabledReason?: string;
  /** The device server URLs the backend moved this registration to (wrong_region / deployment_urls); absent: the configured server. */
  deployment?: DeploymentUrls;
}

/** MB. osquery's watchdog profiles start at 100 MB; launcher caps its own flag the same way. */
export const MEMORY_MB_RANGE = [100, 100_000] as const;
/** Percent, as osquery's --watchdog_utilization_limit. */
export const CPU_PERCENT_RANGE = [1, 100] as const;
/** Bytes of UTF-8, inline or in a file (a JWT with claims fits easily). */
export const MAX_ENROLL_SECRET_BYTES = 16 * 1024;
export const MAX_OSQUERY_FLAGS = 100;
/** Characters; well under the kernel's per-argument limit. */
export const MAX_OSQUERY_FLAG_LENGTH = 1_024;
/** `--name` or `--name=value`: a gflags name, a value without control characters. */
export const OSQUERY_FLAG_PATTERN = /^--[a-z][a-z0-9_]*(=[^\x00-\x1f\x7f]*)?$/;

function integerIn(value: number, [min, max]: readonly [number, number], unit: string): string | undefined {
  if (Number.isInteger(value) && value >= min && value <= max) return undefined;
  return `must be an integer in ${min}..${max} (${unit}), got ${value}`;
}

export function memoryMbProblem(value: number): string | undefined {
  return integerIn(value, MEMORY_MB_RANGE, 'MB');
}

export function cpuPercentProblem(value: number): string | undefined {
  return integerIn(value, CPU_PERCENT_RANGE, 'percent');
}

export function enrollSecretProblem(secret: string): string | undefined {
  const bytes = Buffer.byteLength(secret, 'utf8');
  if (bytes >= 1 && bytes <= MAX_ENROLL_SECRET_BYTES) return undefined;
  return `must be 1..${MAX_ENROLL_SECRET_BYTES} bytes (UTF-8), got ${bytes}`;
}

export function osqueryFlagCountProblem(count: number): string | undefined {
  return count <= MAX_OSQUERY_FLAGS ? undefined : `must have at most ${MAX_OSQUERY_FLAGS} entries, got ${count}`;
}

export function osqueryFlagProblem(flag: string): string | undefined {
  if (flag.length > MAX_OSQUERY_FLAG_LENGTH) return `must be at most ${MAX_OSQUERY_FLAG_LENGTH} characters, got ${flag.length}`;
  if (!OSQUERY_FLAG_PATTERN.test(flag)) return 'must look like --name or --name=value (name [a-z][a-z0-9_]*, no control characters)';
  return undefined;
}

/** Throws E_INVALID_ARGUMENT (`<where>: limits.<field>: <rule>`) unless both limits obey the rules; returns only the set ones. */
export function checkLimits(where: string, limits: Limits): Limits {
  const out: Limits = {};
  const check = (field: string, value: number | undefined, problem: (v: number) => string | undefined): void => {
    const p = value === undefined ? undefined : problem(value);
    if (p !== undefined) throw new LauncherError('E_INVALID_ARGUMENT', `${where}: limits.${field}: ${p}`);
  };
  check('memory_mb', limits.memoryMb, memoryMbProblem);
  check('cpu_percent', limits.cpuPercent, cpuPercentProblem);
  if (limits.memoryMb !== undefined) out.memoryMb = limits.memoryMb;
  if (limits.cpuPercent !== undefined) out.cpuPercent = limits.cpuPercent;
  return out;
}

/** The config/API spelling → `Limits` (unset fields stay absent). */
export function limitsFromWire(wire: WireLimits | undefined): Limits {
  const out: Limits = {};
  if (wire?.memory_mb !== undefined) out.memoryMb = wire.memory_mb;
  if (wire?.cpu_percent !== undefined) out.cpuPercent = wire.cpu_percent;
  return out;
}

/** `Limits` → the config/API spelling. */
export function limitsToWire(limits: Limits): { memory_mb: number | undefined; cpu_percent: number | undefined } {
  return { memory_mb: limits.memoryMb, cpu_percent: limits.cpuPercent };
}

/** issue 22: `isolation.mode`. */
export const ISOLATION_MODES = ['filesystem', 'none'] as const;
/** Tables in `isolation.disable_tables`: osquery table names, bounded. */
export const TABLE_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,63}$/;
export const MAX_DISABLED_TABLES = 200;

export function isolationModeProblem(value: string): string | undefined {
  return (ISOLATION_MODES as readonly string[]).includes(value)
    ? undefined
    : `must be one of ${ISOLATION_MODES.join(', ')}, got ${JSON.stringify(value)}`;
}

export function disabledTablesProblem(names: readonly string[]): string | undefined {
  if (names.length > MAX_DISABLED_TABLES) return `at most ${MAX_DISABLED_TABLES} tables, got ${names.length}`;
  const bad = names.find((n) => typeof n !== 'string' || !TABLE_NAME_PATTERN.test(n));
  return bad === undefined ? undefined : `${JSON.stringify(bad)} is not a table name (${TABLE_NAME_PATTERN.source})`;
}
