/**
 * Serves the Extension or ExtensionManager service from decoded frames: the
 * request is decoded by the method's codec, the handler called (a value or a
 * promise; a throw or rejection becomes a TApplicationException, as the
 * generated processors did), and the reply encoded into one buffer. A sync
 * handler (ping) is answered without a promise in between.
 */
import { errorMessage } from '../errors.js';
import { MessageType, TApplicationExceptionType } from './wire/constants.js';
import { writeApplicationError } from './wire/exception.js';
import { EXTENSION_METHODS, MANAGER_METHODS, METHODS, readArgs, writeResult, type MethodCodec } from './wire/methods.js';
import { WireReader } from './wire/reader.js';
import type { Frame } from './wire/scanner.js';
import { WireWriter } from './wire/writer.js';
import type { ExtensionHandler, ExtensionManagerHandler } from './protocol.js';

export interface Processor {
  /** Serve one complete request; `reply` gets the encoded reply exactly once. Throws on a malformed request. */
  process(frame: Frame, reply: (buf: Buffer) => void): void;
}

type AnyHandler = Record<string, (...args: unknown[]) => unknown>;

/** An encoded EXCEPTION reply. */
export function encodeException(name: string, seqid: number, message: string, type: number): Buffer {
  const w = new WireWriter();
  w.messageBegin(name, MessageType.EXCEPTION, seqid);
  writeApplicationError(w, message, type);
  return w.finish();
}

function encodeReply(m: MethodCodec, seqid: number, value: unknown): Buffer {
  const w = new WireWriter();
  try {
    w.messageBegin(m.name, MessageType.REPLY, seqid);
    writeResult(w, m, value);
    return w.finish();
  } catch (err) {
    w.release();
    return encodeException(m.name, seqid, `encoding ${m.name} reply: ${errorMessage(err)}`, TApplicationExceptionType.UNKNOWN);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

class ServiceProcessor implements Processor {
  private readonly methods: ReadonlySet<string>;
  private readonly handler: AnyHandler;

  constructor(methods: ReadonlySet<string>, handler: object) {
    this.methods = methods;
    this.handler = handler as AnyHandler;
  }

  process(frame: Frame, reply: (buf: Buffer) => void): void {
    const m = this.methods.has(frame.name) ? METHODS[frame.name] : undefined;
    if (!m) {
      reply(encodeException(frame.name, frame.seqid, `Unknown function ${frame.name}`, TApplicationExceptionType.UNKNOWN_METHOD));
      return;
    }
    const args = readArgs(new WireReader(frame.buf, frame.body, frame.end), m);
    const seqid = frame.seqid;
    const fail = (err: unknown) => reply(encodeException(m.name, seqid, errorMessage(err), TApplicationExceptionType.UNKNOWN));
    let result: unknown;
    try {
      result = this.handler[m.name]!(...args);
    } catch (err) {
      fail(err);
      return;
    }
    if (isThenable(result)) result.then((v) => reply(encodeReply(m, seqid, v)), fail);
    else reply(encodeReply(m, seqid, result));
  }
}

/** Serves the Extension service (ping, call, shutdown) with `handler`. */
export class ExtensionProcessor extends ServiceProcessor {
  constructor(handler: ExtensionHandler) {
    super(EXTENSION_METHODS, handler);
  }
}

/** Serves the ExtensionManager service (osqueryd's side) with `handler`. */
export class ExtensionManagerProcessor extends ServiceProcessor {
  constructor(handler: ExtensionManagerHandler) {
    super(MANAGER_METHODS, handler);
  }
}
