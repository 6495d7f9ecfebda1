/**
 * Thrift binary-protocol constants and the bounds every decoder in this folder
 * enforces (docs/protocol/osquery-extensions.md#wire-format: strict write, lenient read, unframed stream).
 */
import { LauncherError } from '../../errors.js';

/** Thrift type ids. */
export const T = {
  STOP: 0,
  VOID: 1,
  BOOL: 2,
  BYTE: 3,
  DOUBLE: 4,
  I16: 6,
  I32: 8,
  I64: 10,
  STRING: 11,
  STRUCT: 12,
  MAP: 13,
  SET: 14,
  LIST: 15,
  UUID: 16,
} as const;

/** Message types. */
export const MessageType = { CALL: 1, REPLY: 2, EXCEPTION: 3, ONEWAY: 4 } as const;

/** TApplicationException types (Apache Thrift's numbering). */
export const TApplicationExceptionType = {
  UNKNOWN: 0,
  UNKNOWN_METHOD: 1,
  INVALID_MESSAGE_TYPE: 2,
  MISSING_RESULT: 5,
  INTERNAL_ERROR: 6,
  PROTOCOL_ERROR: 7,
} as const;

export const VERSION_1 = 0x80010000 | 0;
export const VERSION_MASK = 0xffff0000 | 0;
/** Longest method name accepted: a stray byte stream (HTTP, text) is refused at once. */
export const MAX_METHOD_NAME = 1024;
/** Largest single string accepted (the connection's byte cap applies too). */
export const MAX_STRING_BYTES = 64 * 1024 * 1024;
export const MAX_CONTAINER_SIZE = 16 * 1024 * 1024;
/**
 * Most entries in a plugin call's request map (osqueryd sends a handful: action, context, string, log, ...).
 * An entry costs ~13 bytes on the wire but a property on a JS object when decoded: a 52 MB request of 4 M
 * entries took 4.4 s of the event loop every tenant's servers share; over this the frame is refused undecoded.
 */
export const MAX_REQUEST_ENTRIES = 4096;
/** Deepest nesting of structs and containers (osquery's deepest message nests 5). */
export const MAX_DEPTH = 64;

/** A malformed message: the connection it came on is closed. */
export function protocolError(message: string): LauncherError {
  return new LauncherError('E_THRIFT_PROTOCOL', message);
}

/** A TApplicationException as decoded from, or written to, the wire. */
export class ApplicationError extends Error {
  readonly type: number;
  constructor(message: string, type: number = TApplicationExceptionType.UNKNOWN) {
    super(message);
    this.name = 'TApplicationException';
    this.type = type;
  }
}
