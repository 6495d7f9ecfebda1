/**
 * Server side of gRPC status codes: `statusOf` turns whatever a handler threw
 * into a status. `LauncherError`s carry messages written for humans and are
 * passed through; anything else becomes INTERNAL with a generic message
 * (details go to the log, not to the caller). The client side is
 * call-error.ts.
 */
import * as grpc from '@grpc/grpc-js';
import { LauncherError, type ErrorCode } from '../errors.js';

/** A failure with an explicit status, for the cases no LauncherError code describes. */
export class RpcStatusError extends Error {
  readonly status: grpc.status;
  constructor(status: grpc.status, message: string) {
    super(message);
    this.name = 'RpcStatusError';
    this.status = status;
  }
}

const SERVER_STATUS: Partial<Record<ErrorCode, grpc.status>> = {
  E_NOT_FOUND: grpc.status.NOT_FOUND,
  E_ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  E_INVALID_REGISTRATION_ID: grpc.status.INVALID_ARGUMENT,
  E_INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  E_CONFIG: grpc.status.INVALID_ARGUMENT,
  // osqueryd refused the query (syntax error, unknown table, ...).
  E_EXTENSION_STATUS: grpc.status.INVALID_ARGUMENT,
  E_TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  E_THRIFT_TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  E_PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  // Transient: osqueryd restarting, launcher stopping. Retry later.
  E_CLOSED: grpc.status.UNAVAILABLE,
  E_SHUTDOWN: grpc.status.UNAVAILABLE,
  E_THRIFT_CONNECTION: grpc.status.UNAVAILABLE,
  E_OSQUERYD_NOT_FOUND: grpc.status.FAILED_PRECONDITION,
  E_LAUNCH: grpc.status.FAILED_PRECONDITION,
  E_UPDATE: grpc.status.FAILED_PRECONDITION,
  E_UNSUPPORTED: grpc.status.UNIMPLEMENTED,
};

export interface StatusObject {
  code: grpc.status;
  details: string;
  /** Unexpected (not a LauncherError / RpcStatusError): worth an error log. */
  unexpected: boolean;
}

export function statusOf(err: unknown): StatusObject {
  if (err instanceof RpcStatusError) return { code: err.status, details: err.message, unexpected: false };
  if (err instanceof LauncherError) {
    // Our bug (issue 21): INTERNAL, and the caller's log line is at error level.
    if (err.code === 'E_INTERNAL') return { code: grpc.status.INTERNAL, details: `internal error: ${err.message}`, unexpected: true };
    const code = SERVER_STATUS[err.code];
    if (code !== undefined) return { code, details: err.message, unexpected: false };
    return { code: grpc.status.INTERNAL, details: `${err.code}: ${err.message}`, unexpected: true };
  }
  return { code: grpc.status.INTERNAL, details: 'internal error in the launcher (see its log)', unexpected: true };
}

/** The error object grpc-js expects from a handler (callback(err) or call.emit('error', err)). */
export function toServiceError(status: StatusObject): Partial<grpc.ServiceError> {
  return Object.assign(new Error(status.details), { code: status.code, details: status.details });
}
