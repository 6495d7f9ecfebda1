/**
 * Exit codes of `launcher ctl` (stable: scripts branch on them).
 */
import { isLauncherError } from '../errors.js';
import { ControlCallError, type ControlFailure } from '../control/call-error.js';

export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  notFound: 3,
  permissionDenied: 4,
  unavailable: 5,
  tls: 6,
  timeout: 7,
  alreadyExists: 8,
  unsupported: 9,
  unhealthy: 10,
} as const;

const BY_FAILURE: Record<ControlFailure, number> = {
  'permission-denied': EXIT.permissionDenied,
  'not-found': EXIT.notFound,
  'invalid-argument': EXIT.usage,
  'already-exists': EXIT.alreadyExists,
  timeout: EXIT.timeout,
  unavailable: EXIT.unavailable,
  tls: EXIT.tls,
  unsupported: EXIT.unsupported,
  'failed-precondition': EXIT.error,
  internal: EXIT.error,
};

export function exitCodeOf(err: unknown): number {
  if (err instanceof ControlCallError) return BY_FAILURE[err.failure];
  if (isLauncherError(err, 'E_TLS')) return EXIT.tls;
  if (isLauncherError(err, 'E_CONFIG') || isLauncherError(err, 'E_INVALID_ARGUMENT') || isLauncherError(err, 'E_INVALID_REGISTRATION_ID')) {
    return EXIT.usage;
  }
  return EXIT.error;
}

export const EXIT_CODES_HELP = `
Exit codes:
  0 ok                 5 launcher not reachable
  1 other error        6 TLS/certificate problem
  2 usage / invalid    7 timeout
  3 not found          8 already exists
  4 permission denied  9 server lacks the feature
                      10 unhealthy (health)
`;
