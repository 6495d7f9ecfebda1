/**
 * Request validation for the control API. Every function returns the value
 * to use or throws LauncherError (E_INVALID_REGISTRATION_ID /
 * E_INVALID_ARGUMENT → INVALID_ARGUMENT) with a message naming the field,
 * the rule and the offending value (secrets are never echoed).
 */
import { isAbsolute } from 'node:path';
import { LauncherError } from '../errors.js';
import type { AddRegistrationInput, Limits } from './target.js';

export const REGISTRATION_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const MAX_SQL_BYTES = 64 * 1024;
export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;
export const MAX_QUERY_TIMEOUT_MS = 300_000;
export const DEFAULT_HISTORY_LIMIT = 20;
export const MAX_HISTORY_LIMIT = 1_000;
export const MAX_SECRET_BYTES = 4_096;
export const MAX_OSQUERY_FLAGS = 64;
export const MAX_FLAG_LENGTH = 1_024;
export const MEMORY_MB_RANGE = [16, 1_048_576] as const;
export const CPU_PERCENT_RANGE = [1, 10_000] as const;

function invalid(message: string): never {
  throw new LauncherError('E_INVALID_ARGUMENT', message);
}

function show(value: string, max = 80): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}

export function registrationId(value: string, field = 'id'): string {
  if (!REGISTRATION_ID_PATTERN.test(value)) {
    throw new LauncherError(
      'E_INVALID_REGISTRATION_ID',
      `${field} ${show(value)} is not a valid registration id: expected ${REGISTRATION_ID_PATTERN.source}`,
    );
  }
  return value;
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

/** 0 (unset) → default. */
export function historyLimit(value: number): number {
  if (value === 0) return DEFAULT_HISTORY_LIMIT;
  if (!Number.isInteger(value) || value < 1 || value > MAX_HISTORY_LIMIT) {
    invalid(`limit ${value} is out of range: expected 1..${MAX_HISTORY_LIMIT} (or 0 for the default ${DEFAULT_HISTORY_LIMIT})`);
  }
  return value;
}

function inRange(field: string, value: number | undefined, [min, max]: readonly [number, number]): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > max) invalid(`${field} ${value} is out of range: expected ${min}..${max}`);
}

export function limits(value: Limits | undefined): Limits | undefined {
  if (!value) return undefined;
  inRange('limits.memory_mb', value.memory_mb, MEMORY_MB_RANGE);
  inRange('limits.cpu_percent', value.cpu_percent, CPU_PERCENT_RANGE);
  return value;
}

export function osqueryFlags(flags: string[]): string[] {
  if (flags.length > MAX_OSQUERY_FLAGS) invalid(`osquery_flags has ${flags.length} entries, the maximum is ${MAX_OSQUERY_FLAGS}`);
  for (const flag of flags) {
    if (flag.length > MAX_FLAG_LENGTH) invalid(`osquery flag ${show(flag)} is longer than ${MAX_FLAG_LENGTH} characters`);
    // eslint-disable-next-line no-control-regex
    if (!/^--[A-Za-z0-9_]+(=[^\x00-\x1f\x7f]*)?$/.test(flag)) {
      invalid(`osquery flag ${show(flag)} is not of the form --name or --name=value (no control characters)`);
    }
  }
  return flags;
}

export function addRegistration(input: AddRegistrationInput): AddRegistrationInput {
  registrationId(input.id);
  const hasSecret = input.enrollSecret !== undefined;
  const hasPath = input.enrollSecretPath !== undefined;
  if (hasSecret === hasPath) invalid('exactly one of enroll_secret and enroll_secret_path is required');
  if (hasSecret) {
    const bytes = Buffer.byteLength(input.enrollSecret as string, 'utf8');
    if (bytes === 0 || bytes > MAX_SECRET_BYTES) invalid(`enroll_secret must be 1..${MAX_SECRET_BYTES} bytes, got ${bytes}`);
  } else {
    const path = input.enrollSecretPath as string;
    if (!isAbsolute(path) || path.includes('\0') || path.length > 4_096) {
      invalid(`enroll_secret_path ${show(path)} must be an absolute path`);
    }
  }
  limits(input.limits);
  osqueryFlags(input.osqueryFlags ?? []);
  return input;
}
