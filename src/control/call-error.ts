/**
 * Client side of the control API's failures: `ControlCallError` wraps a
 * failed call with its status and a message that says what to do about it;
 * `failure` is what callers (and `launcher ctl` exit codes) switch on.
 */
import * as grpc from '@grpc/grpc-js';
import { LauncherError, type ErrorCode } from '../errors.js';

export type ControlFailure =
  | 'permission-denied'
  | 'not-found'
  | 'invalid-argument'
  | 'already-exists'
  | 'timeout'
  | 'unavailable'
  | 'tls'
  | 'unsupported'
  | 'failed-precondition'
  | 'internal';

const CLIENT_ERROR_CODE: Record<ControlFailure, ErrorCode> = {
  'permission-denied': 'E_PERMISSION_DENIED',
  'not-found': 'E_NOT_FOUND',
  'invalid-argument': 'E_INVALID_ARGUMENT',
  'already-exists': 'E_ALREADY_EXISTS',
  timeout: 'E_TIMEOUT',
  tls: 'E_TLS',
  unavailable: 'E_UNAVAILABLE',
  unsupported: 'E_UNSUPPORTED',
  'failed-precondition': 'E_CONTROL_FAILED',
  internal: 'E_CONTROL_FAILED',
};

/** A control API call that failed; `failure` is what callers (and exit codes) switch on. */
export class ControlCallError extends LauncherError {
  readonly failure: ControlFailure;
  /** The gRPC status, when the failure came from a call. */
  readonly grpcStatus: grpc.status | undefined;

  constructor(failure: ControlFailure, message: string, options: { grpcStatus?: grpc.status; cause?: unknown } = {}) {
    super(CLIENT_ERROR_CODE[failure], message, { cause: options.cause });
    this.name = 'ControlCallError';
    this.failure = failure;
    this.grpcStatus = options.grpcStatus;
  }
}

/** Details of a transport failure that point at certificates or the TLS handshake. */
const TLS_HINT =
  /certificate|self[- ]signed|handshake|ssl|tls|alert|unknown ca|unable to (get|verify)|wrong version|protocol version|hostname|altnames|ERR_SSL/i;

export function tlsFailure(target: string, reason: string, opts: { grpcStatus?: grpc.status; cause?: unknown } = {}): ControlCallError {
  return new ControlCallError(
    'tls',
    `TLS connection to ${target} failed: ${reason} (check --ca/--cert/--key: the client certificate must be issued by the launcher's CA and not expired; the CA must be the one that issued the server certificate)`,
    opts,
  );
}

/** Details grpc-js itself produces when there is no usable connection (as opposed to a status the server sent). */
export const TRANSPORT_HINT = /No connection established|Failed to connect|Connection dropped|ECONNREFUSED|ENOENT|EACCES|ECONNRESET|EPIPE/;

/** grpc-js transport details carry timestamps, OpenSSL source locations and an often empty resolution note. */
function cleanDetails(details: string): string {
  return details
    .replace(/\s*\(\d{4}-\d{2}-\d{2}T[\d:.]+Z\)/g, '')
    .replace(/:\.\.\/deps\/openssl\/\S+/g, '')
    .replace(/\s*Resolution note:\s*$/, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Map a failed call (what grpc-js hands to the callback or emits) to a ControlCallError. */
export function fromServiceError(err: unknown, target: string, method: string): ControlCallError {
  // Note: a client certificate the server rejects after a TLS 1.3 handshake
  // surfaces here as a bare "Failed to connect"; ControlClient then asks
  // tls-probe.ts for the reason.
  const e = err as Partial<grpc.ServiceError>;
  const code = typeof e.code === 'number' ? (e.code as grpc.status) : grpc.status.UNKNOWN;
  const details = cleanDetails(e.details ?? (err instanceof Error ? err.message : String(err)));
  const opts = { grpcStatus: code, cause: err };
  switch (code) {
    case grpc.status.PERMISSION_DENIED:
      return new ControlCallError('permission-denied', `permission denied: ${details}`, opts);
    case grpc.status.UNAUTHENTICATED:
      return new ControlCallError('permission-denied', `not authenticated: ${details}`, opts);
    case grpc.status.NOT_FOUND:
      return new ControlCallError('not-found', `not found: ${details}`, opts);
    case grpc.status.INVALID_ARGUMENT:
      return new ControlCallError('invalid-argument', `invalid argument: ${details}`, opts);
    case grpc.status.ALREADY_EXISTS:
      return new ControlCallError('already-exists', `already exists: ${details}`, opts);
    case grpc.status.DEADLINE_EXCEEDED:
      return new ControlCallError('timeout', `${method} timed out: ${details}`, opts);
    case grpc.status.UNIMPLEMENTED:
      return new ControlCallError('unsupported', `the launcher at ${target} does not support ${method} (older server?): ${details}`, opts);
    case grpc.status.FAILED_PRECONDITION:
      return new ControlCallError('failed-precondition', details, opts);
    case grpc.status.UNAVAILABLE:
      if (TLS_HINT.test(details)) return tlsFailure(target, details, opts);
      if (TRANSPORT_HINT.test(details)) {
        return new ControlCallError('unavailable', `cannot reach the launcher at ${target} (is it running?): ${details}`, opts);
      }
      // Sent by the launcher itself (shutting down, osqueryd restarting): retry later.
      return new ControlCallError('unavailable', `the launcher at ${target} is temporarily unavailable: ${details}`, opts);
    default:
      return new ControlCallError('internal', `${method} failed (${grpc.status[code] ?? code}): ${details}`, opts);
  }
}
