/**
 * TApplicationException on the wire: field 1 the message, field 2 the type.
 * The `thrift` npm runtime writes `this.code`, which its constructor never
 * sets, so its exceptions go out without a type; this writes the type (when
 * not UNKNOWN, 0), as Apache Thrift's C++ does, so UNKNOWN_METHOD reaches the
 * peer as such.
 */
import { ApplicationError, T } from './constants.js';
import type { WireReader } from './reader.js';
import type { WireWriter } from './writer.js';

export function writeApplicationError(w: WireWriter, message: string, type: number): void {
  if (message) {
    w.fieldBegin(T.STRING, 1);
    w.string(message);
  }
  if (type) {
    w.fieldBegin(T.I32, 2);
    w.i32(type);
  }
  w.fieldStop();
}

export function readApplicationError(r: WireReader): ApplicationError {
  let message = '';
  let type = 0;
  for (let t = r.fieldBegin(); t !== T.STOP; t = r.fieldBegin()) {
    if (r.fid === 1 && t === T.STRING) message = r.string();
    else if (r.fid === 2 && t === T.I32) type = r.i32();
    else r.skip(t);
  }
  return new ApplicationError(message, type);
}
