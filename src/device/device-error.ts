import { LauncherError, type ErrorCode } from '../errors.js';
import type { DeviceMethod } from './types.js';

/**
 * A failed device call. Codes:
 * - E_DEVICE_TRANSPORT: network error, connection reset, HTTP 5xx without a JSON-RPC body (retried)
 * - E_TIMEOUT: no complete response within the per-call timeout (retried)
 * - E_TLS: handshake, certificate or pin failure (not retried)
 * - E_DEVICE_RESPONSE: the body is not a usable JSON-RPC response (not retried)
 * - E_DEVICE_REJECTED: the server answered with a JSON-RPC `error`, on any HTTP status (not retried; ADR 0013)
 * - E_SHUTDOWN: the call was aborted by its caller or the client was closed
 */
export class DeviceError extends LauncherError {
  readonly method: DeviceMethod;
  readonly retryable: boolean;
  /** HTTP status when a response arrived. */
  readonly httpStatus: number | undefined;
  /** JSON-RPC error code when the server sent an `error` object. */
  readonly rpcCode: number | undefined;
  attempts = 1;

  constructor(
    code: ErrorCode,
    method: DeviceMethod,
    message: string,
    options: { cause?: unknown; retryable?: boolean; httpStatus?: number; rpcCode?: number } = {},
  ) {
    super(code, message, { cause: options.cause });
    this.name = 'DeviceError';
    this.method = method;
    this.retryable = options.retryable ?? false;
    this.httpStatus = options.httpStatus;
    this.rpcCode = options.rpcCode;
  }
}
