/**
 * Request validation for the control API. Every function returns the value
 * to use or throws LauncherError (E_INVALID_REGISTRATION_ID /
 * E_INVALID_ARGUMENT → INVALID_ARGUMENT) with a message naming the field,
 * the rule and the offending value (secrets are never echoed).
 */
import { isAbsolute } from 'node:path';
import { LauncherError } from '../errors.js';
import * as rules from '../registration.js';
import type { RegistrationId } from '../registration.js';
import type { AddRegistrationInput, Limits } from './target.js';

export {
  REGISTRATION_ID_PATTERN,
  MAX_ENROLL_SECRET_BYTES as MAX_SECRET_BYTES,
  MAX_OSQUERY_FLAGS,
  MAX_OSQUERY_FLAG_LENGTH as MAX_FLAG_LENGTH,
} from '../registration.js';
export const MAX_SQL_BYTES = 64 * 1024;
export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;
export const MAX_QUERY_TIMEOUT_MS = 300_000;
export const DEFAULT_HISTORY_LIMIT = 20;
export const MAX_HISTORY_LIMIT = 1_000;

function invalid(message: string): never {
  throw new LauncherError('E_INVALID_ARGUMENT', message);
}

function show(value: string, max = 80): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}

export function registrationId(value: string, field = 'id'): RegistrationId {
  return rules.parseRegistrationId(value, field);
}

export function sql(value: string): string {
  if (value.trim() === '') invalid('sql must not be empty');
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_SQL_BYTES) invalid(`sql is ${bytes} bytes, the maximum is ${MAX_SQL_BYTES}`);
  return value;
}

/** 0 (unset) → default. */
export function queryTimeoutMs(value: number): number {
  if (value === 0) return DEFAULT_QUERY_TIMEOUT_MS;
  if (!Number.isInteger(value) || value < 1 || value > MAX_QUERY_TIMEOUT_MS) {
    invalid(`timeout_ms ${value} is out of range: expected 1..${MAX_QUERY_TIMEOUT_MS} (or 0 for the default ${DEFAULT_QUERY_TIMEOUT_MS})`);
  }
  return value;
}

/** ReleaseQuarantine's `query`: a name, a SQL hash (prefix) or the SQL; bounded like a query. */
export function quarantineQuery(value: string): string {
  if (value.trim() === '') invalid('query must not be empty (a scheduled query name, a SQL hash or the SQL)');
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_SQL_BYTES) invalid(`query is ${bytes} bytes, the maximum is ${MAX_SQL_BYTES}`);
  return value;
}

/** 0 (unset) → default. */
export function historyLimit(value: number): number {
  if (value === 0) return DEFAULT_HISTORY_LIMIT;
  if (!Number.isInteger(value) || value < 1 || value > MAX_HISTORY_LIMIT) {
    invalid(`limit ${value} is out of range: expected 1..${MAX_HISTORY_LIMIT} (or 0 for the default ${DEFAULT_HISTORY_LIMIT})`);
  }
  return value;
}

/** Throws E_INVALID_ARGUMENT with `field: <rule>` when a shared rule (src/registration.ts) is broken. */
function rule<T>(field: string, value: T | undefined, problem: (value: T) => string | undefined): void {
  if (value === undefined) return;
  const p = problem(value);
  if (p !== undefined) invalid(`${field}: ${p}`);
}

export function limits(value: Limits | undefined): Limits | undefined {
  if (!value) return undefined;
  rule('limits.memory_mb', value.memory_mb, rules.memoryMbProblem);
  rule('limits.cpu_percent', value.cpu_percent, rules.cpuPercentProblem);
  return value;
}

export function osqueryFlags(flags: string[]): string[] {
  rule('osquery_flags', flags.length, rules.osqueryFlagCountProblem);
  flags.forEach((flag, i) => {
    rule(`osquery_flags.${i} ${show(flag)}`, flag, rules.osqueryFlagProblem);
  });
  return flags;
}

export function addRegistration(input: AddRegistrationInput): AddRegistrationInput {
  registrationId(input.id);
  const hasSecret = input.enrollSecret !== undefined;
  const hasPath = input.enrollSecretPath !== undefined;
  if (hasSecret === hasPath) invalid('exactly one of enroll_secret and enroll_secret_path is required');
  if (hasSecret) {
    rule('enroll_secret', input.enrollSecret, rules.enrollSecretProblem);
  } else {
    const path = input.enrollSecretPath as string;
    if (!isAbsolute(path) || path.includes('\0') || path.length > 4_096) {
      invalid(`enroll_secret_path ${show(path)} must be an absolute path`);
    }
  }
  limits(input.limits);
  osqueryFlags(input.osqueryFlags ?? []);
  if (input.isolation?.mode !== undefined) rule('isolation.mode', input.isolation.mode, rules.isolationModeProblem);
  if (input.isolation?.disable_tables !== undefined)
    rule('isolation.disable_tables', input.isolation.disable_tables, rules.disabledTablesProblem);
  return input;
}
