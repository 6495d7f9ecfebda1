/**
 * One error class for the whole supervisor, with a stable `code` callers
 * match on (docs/errors.md lists each: cause, what to do, gRPC status and
 * `ctl` exit code; a test keeps it complete). Messages say what failed,
 * where, and with what value; `cause` keeps the underlying error.
 */
export type ErrorCode =
  | 'E_SOCKET_PATH_TOO_LONG'
  | 'E_THRIFT_TIMEOUT'
  | 'E_THRIFT_CONNECTION'
  | 'E_THRIFT_PROTOCOL'
  | 'E_THRIFT_APPLICATION'
  | 'E_EXTENSION_STATUS'
  | 'E_CLOSED'
  | 'E_INVALID_REGISTRATION_ID'
  | 'E_INVALID_ARGUMENT'
  | 'E_NOT_FOUND'
  | 'E_ALREADY_EXISTS'
  | 'E_CONFIG'
  | 'E_OSQUERYD_NOT_FOUND'
  | 'E_LAUNCH'
  | 'E_DEVICE_TRANSPORT'
  | 'E_DEVICE_RESPONSE'
  | 'E_DEVICE_REJECTED'
  | 'E_DEVICE_DISABLED'
  | 'E_NODE_INVALID'
  | 'E_STORE'
  | 'E_TIMEOUT'
  | 'E_SHUTDOWN'
  | 'E_PERMISSION_DENIED'
  | 'E_TLS'
  | 'E_UNAVAILABLE'
  | 'E_UNSUPPORTED'
  | 'E_CONTROL_FAILED'
  /** An osqueryd update refused (verification, a rollback attempt, a bad archive) or failed to install (issue 17). */
  | 'E_UPDATE'
  /** Our bug: an illegal state change or a broken invariant. gRPC INTERNAL, logged at error. */
  | 'E_INTERNAL';

export class LauncherError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LauncherError';
    this.code = code;
  }
}

export function isLauncherError(err: unknown, code?: ErrorCode): err is LauncherError {
  return err instanceof LauncherError && (code === undefined || err.code === code);
}

/** The message of anything thrown, for logs and status fields. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
