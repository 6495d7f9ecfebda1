/**
 * The rules for a registration's values, defined once (issue 13). The YAML
 * config (src/config/schema.ts), the control API (src/control/validate.ts)
 * and the store (src/store/registrations.ts) all check through these
 * functions, so the same bad value gets the same message whichever way it
 * comes in. A leaf module: it imports nothing.
 *
 * Each check returns undefined when the value is fine, else the rule broken,
 * phrased to follow the field's name ("limits.memory_mb: must be ..."). A
 * secret's value is never part of a message.
 */

export const REGISTRATION_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

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
// eslint-disable-next-line no-control-regex
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

/** issue 22: `isolation.mode`. */
export const ISOLATION_MODES = ['filesystem', 'none'] as const;
/** Tables in `isolation.disable_tables`: osquery table names, bounded. */
export const TABLE_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,63}$/;
export const MAX_DISABLED_TABLES = 200;

export function isolationModeProblem(value: string): string | undefined {
  return (ISOLATION_MODES as readonly string[]).includes(value) ? undefined : `must be one of ${ISOLATION_MODES.join(', ')}, got ${JSON.stringify(value)}`;
}

export function disabledTablesProblem(names: readonly string[]): string | undefined {
  if (names.length > MAX_DISABLED_TABLES) return `at most ${MAX_DISABLED_TABLES} tables, got ${names.length}`;
  const bad = names.find((n) => typeof n !== 'string' || !TABLE_NAME_PATTERN.test(n));
  return bad === undefined ? undefined : `${JSON.stringify(bad)} is not a table name (${TABLE_NAME_PATTERN.source})`;
}
