/**
 * Encodes one Thrift binary message into a single buffer: primitives and
 * strings are written straight into a scratch area that grows geometrically
 * and is kept between messages, and `finish()` copies the message out once,
 * so a message costs one allocation and one socket write whatever its size
 * (the `thrift` runtime allocated a Buffer per i32 and string, then copied
 * them all again on flush).
 */
import { T, VERSION_1 } from './constants.js';

const INITIAL = 4096;
/** Scratch kept between messages up to this size; a larger one is dropped after use. */
const KEEP = 1024 * 1024;
/** A message larger than this is handed out in the scratch itself (no copy); the next writer starts at that size. */
const HAND_OFF = 64 * 1024;

let shared: Buffer | undefined;
let nextSize = INITIAL;

export class WireWriter {
  private buf: Buffer;
  private pos = 0;

  constructor() {
    this.buf = shared ?? Buffer.allocUnsafe(nextSize);
    shared = undefined; // taken: a nested writer gets its own
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** The encoded message, in a buffer of its own; the writer is spent. */
  finish(): Buffer {
    if (this.pos > HAND_OFF) {
      const whole = this.buf.subarray(0, this.pos);
      nextSize = Math.min(this.buf.length, KEEP);
      this.pos = 0;
      return whole;
    }
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    this.release();
    return out;
  }

  /** Give the scratch back without producing a message (after an encoding error). */
  release(): void {
    if (this.buf.length <= KEEP) shared = this.buf;
    this.pos = 0;
  }

  byte(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
  }

  i16(v: number): void {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
  }

  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.pos);
    this.pos += 4;
  }

  /** i64 from a number (exact up to 2^53), a bigint or a decimal string (map keys). */
  i64(v: number | bigint | string): void {
    this.ensure(8);
    if (typeof v === 'number' && Number.isSafeInteger(v)) {
      const hi = Math.floor(v / 0x100000000);
      this.buf.writeInt32BE(hi, this.pos);
      this.buf.writeUInt32BE(v - hi * 0x100000000, this.pos + 4);
    } else {
      this.buf.writeBigInt64BE(BigInt(v), this.pos);
    }
    this.pos += 8;
  }

  /** UTF-8 string with its i32 byte length, encoded in place. */
  string(s: string): void {
    const n = s.length;
    this.ensure(4 + n * 3);
    const buf = this.buf;
    const start = this.pos + 4;
    let len = -1;
    if (n < 48) {
      // Short ASCII strings (column names, most values): a loop beats the native call.
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + i] = c;
      }
      if (i === n) len = n;
    }
    if (len < 0) len = buf.write(s, start, 'utf8');
    const p = this.pos;
    buf[p] = len >>> 24;
    buf[p + 1] = (len >>> 16) & 0xff;
    buf[p + 2] = (len >>> 8) & 0xff;
    buf[p + 3] = len & 0xff;
    this.pos = start + len;
  }

  fieldBegin(type: number, id: number): void {
    this.ensure(3);
    this.buf[this.pos] = type;
    this.buf.writeInt16BE(id, this.pos + 1);
    this.pos += 3;
  }

  fieldStop(): void {
    this.byte(T.STOP);
  }

  mapBegin(ktype: number, vtype: number, size: number): void {
    this.ensure(6);
    this.buf[this.pos] = ktype;
    this.buf[this.pos + 1] = vtype;
    this.buf.writeInt32BE(size, this.pos + 2);
    this.pos += 6;
  }

  listBegin(etype: number, size: number): void {
    this.ensure(5);
    this.buf[this.pos] = etype;
    this.buf.writeInt32BE(size, this.pos + 1);
    this.pos += 5;
  }

  /** Strict header (version | type, name, seqid), as every Thrift library writes. */
  messageBegin(name: string, type: number, seqid: number): void {
    this.i32(VERSION_1 | type);
    this.string(name);
    this.i32(seqid);
  }
}
