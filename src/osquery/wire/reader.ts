/**
 * Decodes the body of a complete message (found by FrameScanner, so every
 * length and nesting level has been checked against the bytes present).
 * Fields of an unexpected type are skipped, as generated code does; a
 * container whose element types differ from the IDL's is refused.
 */
import { MAX_DEPTH, T, protocolError } from './constants.js';

const TYPE_NAMES: Record<number, string> = {
  2: 'bool',
  3: 'byte',
  4: 'double',
  6: 'i16',
  8: 'i32',
  10: 'i64',
  11: 'string',
  12: 'struct',
  13: 'map',
  14: 'set',
  15: 'list',
  16: 'uuid',
};

export function typeName(t: number): string {
  return TYPE_NAMES[t] ?? `type ${t}`;
}

export class WireReader {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;
  /** Id of the field whose header was read last. */
  fid = 0;

  constructor(buf: Buffer, pos: number, end: number) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw protocolError('message ends inside a value');
  }

  /** Next field's type (T.STOP at the end of the struct); its id goes to `fid`. */
  fieldBegin(): number {
    this.need(1);
    const t = this.buf[this.pos++]!;
    if (t === T.STOP) return t;
    this.need(2);
    this.fid = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return t;
  }

  i32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** i64 as a JS number (osquery's only i64 is the extension uuid, a small integer). */
  i64(): number {
    this.need(8);
    const hi = this.buf.readInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    const v = hi * 0x100000000 + lo;
    return Number.isSafeInteger(v) ? v : Number(this.buf.readBigInt64BE(this.pos - 8));
  }

  string(): string {
    this.need(4);
    const len = this.buf.readInt32BE(this.pos);
    const start = this.pos + 4;
    if (len < 0 || start + len > this.end) throw protocolError(`string size ${len} out of range`);
    this.pos = start + len;
    return len === 0 ? '' : this.buf.toString('utf8', start, start + len);
  }

  /** Map header; its size, after checking the key and value types (`what` names it in errors). */
  mapBegin(ktype: number, vtype: number, what: string): number {
    this.need(6);
    const k = this.buf[this.pos]!;
    const v = this.buf[this.pos + 1]!;
    const size = this.buf.readInt32BE(this.pos + 2);
    this.pos += 6;
    if (size > 0 && (k !== ktype || v !== vtype)) {
      throw protocolError(`${what}: map<${typeName(k)},${typeName(v)}> where map<${typeName(ktype)},${typeName(vtype)}> expected`);
    }
    return size;
  }

  /** List (or set) header; its size, after checking the element type. */
  listBegin(etype: number, what: string): number {
    this.need(5);
    const e = this.buf[this.pos]!;
    const size = this.buf.readInt32BE(this.pos + 1);
    this.pos += 5;
    if (size > 0 && e !== etype) throw protocolError(`${what}: list<${typeName(e)}> where list<${typeName(etype)}> expected`);
    return size;
  }

  /** Skip one value of type `t`. */
  skip(t: number, depth = 0): void {
    if (depth > MAX_DEPTH) throw protocolError(`nesting deeper than ${MAX_DEPTH}`);
    switch (t) {
      case T.BOOL:
      case T.BYTE:
        return this.advance(1);
      case T.I16:
        return this.advance(2);
      case T.I32:
        return this.advance(4);
      case T.DOUBLE:
      case T.I64:
        return this.advance(8);
      case T.UUID:
        return this.advance(16);
      case T.STRING:
        this.string();
        return;
      case T.STRUCT:
        for (let f = this.fieldBegin(); f !== T.STOP; f = this.fieldBegin()) this.skip(f, depth + 1);
        return;
      case T.MAP: {
        this.need(6);
        const k = this.buf[this.pos]!;
        const v = this.buf[this.pos + 1]!;
        const size = this.buf.readInt32BE(this.pos + 2);
        this.pos += 6;
        for (let i = 0; i < size; i++) {
          this.skip(k, depth + 1);
          this.skip(v, depth + 1);
        }
        return;
      }
      case T.SET:
      case T.LIST: {
        this.need(5);
        const e = this.buf[this.pos]!;
        const size = this.buf.readInt32BE(this.pos + 1);
        this.pos += 5;
        for (let i = 0; i < size; i++) this.skip(e, depth + 1);
        return;
      }
      default:
        throw protocolError(`invalid type ${t}`);
    }
  }

  private advance(n: number): void {
    this.need(n);
    this.pos += n;
  }
}
