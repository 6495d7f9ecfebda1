/**
 * Finds whole Thrift binary messages in a byte stream without decoding them
 * and without exceptions for "not enough bytes yet": the scanner walks the
 * message structure (field headers, string lengths, container sizes) with an
 * explicit stack and, when the bytes run out, keeps its place and resumes on
 * the next chunk. Scanning is linear in the bytes received, however finely a
 * request is trickled in, and only a complete message is handed to a decoder.
 *
 * Garbage (a bad version, an over-long name, a negative or oversized length,
 * an unknown type, nesting deeper than MAX_DEPTH, more than `maxBytes`
 * buffered) throws a protocol error: the caller closes the connection.
 *
 * Memory is taken lazily: a chunk holding whole messages is scanned where it
 * lies; only the tail of an incomplete message is copied into a buffer of the
 * scanner's own, grown geometrically.
 */
import {
  MAX_CONTAINER_SIZE,
  MAX_DEPTH,
  MAX_METHOD_NAME,
  MAX_STRING_BYTES,
  T,
  VERSION_1,
  VERSION_MASK,
  protocolError,
} from './constants.js';

/** One complete message: its header, and where its body (the args or result struct) lies in `buf`. */
export interface Frame {
  name: string;
  type: number;
  seqid: number;
  buf: Buffer;
  body: number;
  end: number;
}

const K_STRUCT = 0;
const K_LIST = 1;
const K_MAP = 2;

function validType(t: number): boolean {
  return (
    t === T.BOOL ||
    t === T.BYTE ||
    t === T.DOUBLE ||
    t === T.I16 ||
    t === T.I32 ||
    t === T.I64 ||
    t === T.STRING ||
    t === T.STRUCT ||
    t === T.MAP ||
    t === T.SET ||
    t === T.LIST ||
    t === T.UUID
  );
}

/** Per nesting level: kind, remaining, key type, value type. */
const SHARED_STACK = new Int32Array(MAX_DEPTH * 4);

export class FrameScanner {
  private readonly maxBytes: number;
  private buf: Buffer | undefined;
  private owned = false; // buf is ours (may be appended to), not a socket chunk
  private start = 0; // first byte of the current message
  private end = 0;
  // Scan state of the current message; body < 0: header not parsed yet.
  private name = '';
  private type = 0;
  private seqid = 0;
  private body = -1;
  private pos = 0;
  private depth = 0;
  private pending = -1; // type of a value whose header was consumed but whose bytes were not
  private saved: Int32Array | undefined; // the levels of an incomplete message (see scan())

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Bytes of an incomplete message held. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Add socket data; throws when more than maxBytes of one message would be held. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const live = this.end - this.start;
    if (live + chunk.length > this.maxBytes) {
      throw protocolError(`message exceeds ${this.maxBytes} bytes (${live + chunk.length} buffered)`);
    }
    if (!this.buf || live === 0) {
      this.buf = chunk;
      this.owned = false;
      this.shift(-this.start);
      this.start = 0;
      this.end = chunk.length;
      return;
    }
    if (this.owned && this.end + chunk.length <= this.buf.length) {
      chunk.copy(this.buf, this.end);
      this.end += chunk.length;
      return;
    }
    const next = Buffer.allocUnsafe(Math.max(2 * (live + chunk.length), 4096));
    this.buf.copy(next, 0, this.start, this.end);
    chunk.copy(next, live);
    this.shift(-this.start);
    this.buf = next;
    this.owned = true;
    this.start = 0;
    this.end = live + chunk.length;
  }

  private shift(by: number): void {
    if (this.body >= 0) {
      this.body += by;
      this.pos += by;
    }
  }

  /** The next complete message, or undefined until more bytes arrive. */
  next(): Frame | undefined {
    if (!this.buf || this.end === this.start) return undefined;
    if (this.body < 0 && !this.header()) return undefined;
    if (!this.scan()) return undefined;
    const frame: Frame = { name: this.name, type: this.type, seqid: this.seqid, buf: this.buf, body: this.body, end: this.pos };
    this.start = this.pos;
    this.body = -1;
    if (this.start === this.end) {
      // Nothing pending: drop the reference so an idle connection holds no buffer.
      this.buf = undefined;
      this.start = this.end = 0;
    }
    return frame;
  }

  /** Parse the header (strict or old style) once it is all there. */
  private header(): boolean {
    const buf = this.buf!;
    const s = this.start;
    const avail = this.end - s;
    if (avail < 4) return false;
    const sz = buf.readInt32BE(s);
    let p: number;
    if (sz < 0) {
      if ((sz & VERSION_MASK) !== VERSION_1) throw protocolError(`bad version in message header: 0x${(sz >>> 0).toString(16)}`);
      if (avail < 8) return false;
      const len = buf.readInt32BE(s + 4);
      if (len < 0 || len > MAX_METHOD_NAME) throw protocolError(`method name length ${len} out of range`);
      if (avail < 12 + len) return false;
      this.type = sz & 0xff;
      this.name = buf.toString('utf8', s + 8, s + 8 + len);
      this.seqid = buf.readInt32BE(s + 8 + len);
      p = s + 12 + len;
    } else {
      if (sz > MAX_METHOD_NAME) throw protocolError(`not a thrift message (name length ${sz})`);
      if (avail < 9 + sz) return false;
      this.name = buf.toString('utf8', s + 4, s + 4 + sz);
      this.type = buf[s + 4 + sz]!;
      this.seqid = buf.readInt32BE(s + 5 + sz);
      p = s + 9 + sz;
    }
    this.body = p;
    this.pos = p;
    this.depth = 0;
    this.pending = T.STRUCT;
    return true;
  }

  /** Walk the body from where the last call stopped; true when the message is complete. */
  private scan(): boolean {
    const buf = this.buf!;
    const end = this.end;
    // One stack for every scanner (scan() runs to its end synchronously); only a message left incomplete
    // keeps a copy of its levels, so a connection whose requests arrive whole allocates none (issue 14).
    const st = SHARED_STACK;
    if (this.saved) {
      st.set(this.saved.subarray(0, this.depth * 4));
      this.saved = undefined;
    }
    let pos = this.pos;
    let depth = this.depth;
    let pending = this.pending;
    let complete = false;
    outer: for (;;) {
      if (pending >= 0) {
        let need = 0;
        switch (pending) {
          case T.BOOL:
          case T.BYTE:
            need = 1;
            break;
          case T.I16:
            need = 2;
            break;
          case T.I32:
            need = 4;
            break;
          case T.DOUBLE:
          case T.I64:
            need = 8;
            break;
          case T.UUID:
            need = 16;
            break;
          case T.STRING: {
            if (pos + 4 > end) break outer;
            const len = buf.readInt32BE(pos);
            if (len < 0 || len > MAX_STRING_BYTES) throw protocolError(`string size ${len} out of range`);
            need = 4 + len;
            break;
          }
          case T.STRUCT:
            if (depth >= MAX_DEPTH) throw protocolError(`nesting deeper than ${MAX_DEPTH}`);
            st[depth * 4] = K_STRUCT;
            depth++;
            pending = -1;
            continue;
          case T.MAP:
          case T.SET:
          case T.LIST: {
            if (depth >= MAX_DEPTH) throw protocolError(`nesting deeper than ${MAX_DEPTH}`);
            const isMap = pending === T.MAP;
            const hdr = isMap ? 6 : 5;
            if (pos + hdr > end) break outer;
            const size = buf.readInt32BE(pos + hdr - 4);
            if (size < 0 || size > MAX_CONTAINER_SIZE) throw protocolError(`${isMap ? 'map' : 'list'} size ${size} out of range`);
            const k = buf[pos]!;
            const v = isMap ? buf[pos + 1]! : 0;
            if (size > 0 && (!validType(k) || (isMap && !validType(v))))
              throw protocolError(`invalid element type ${isMap ? `${k}/${v}` : k}`);
            const b = depth * 4;
            st[b] = isMap ? K_MAP : K_LIST;
            st[b + 1] = isMap ? size * 2 : size;
            st[b + 2] = k;
            st[b + 3] = v;
            depth++;
            pos += hdr;
            pending = -1;
            continue;
          }
          default:
            throw protocolError(`invalid type ${pending}`);
        }
        if (pos + need > end) break;
        pos += need;
        pending = -1;
        continue;
      }
      if (depth === 0) {
        complete = true;
        break;
      }
      const b = (depth - 1) * 4;
      const kind = st[b];
      if (kind === K_STRUCT) {
        if (pos >= end) break;
        const t = buf[pos]!;
        if (t === T.STOP) {
          pos++;
          depth--;
          continue;
        }
        if (pos + 3 > end) break;
        pos += 3;
        pending = t;
      } else {
        const left = st[b + 1]!;
        if (left === 0) {
          depth--;
          continue;
        }
        st[b + 1] = left - 1;
        pending = kind === K_MAP && (left & 1) === 1 ? st[b + 3]! : st[b + 2]!;
      }
    }
    this.pos = pos;
    this.depth = depth;
    this.pending = pending;
    if (!complete && depth > 0) this.saved = st.slice(0, depth * 4);
    return complete;
  }
}
