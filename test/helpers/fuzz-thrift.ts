/**
 * Thrift fuzzing helpers: a binary-protocol frame builder that remembers
 * where its length fields and type bytes are (so mutations can target them),
 * the valid seed calls of the Extension and ExtensionManager services, byte
 * and structure mutators, a raw Unix-socket probe with a hard time bound, and
 * /proc readers for a server process's RSS and open descriptors.
 *
 * The seeds are checked against the generated client's own encoding
 * (`encodeWithGeneratedClient`) so "valid" means what the real client sends.
 */
import net from 'node:net';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { ExtensionClientCtor, ExtensionManagerClientCtor, OsqueryBinaryProtocol, makeWriteTransport } from '../../src/osquery/reference.js';
import type { Rng } from './fuzz.js';

/** Thrift binary-protocol type ids. */
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
const VALID_TYPES = [T.BOOL, T.BYTE, T.DOUBLE, T.I16, T.I32, T.I64, T.STRING, T.STRUCT, T.MAP, T.SET, T.LIST];
export const MT = { CALL: 1, REPLY: 2, EXCEPTION: 3, ONEWAY: 4 } as const;

/** An encoded frame plus the offsets of its i32 length/size fields and its type bytes. */
export interface Frame {
  name: string;
  bytes: Buffer;
  lengths: number[];
  types: number[];
}

export class FrameBuilder {
  private readonly parts: Buffer[] = [];
  private size = 0;
  readonly lengths: number[] = [];
  readonly types: number[] = [];

  private push(b: Buffer): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }

  i8(v: number): this {
    const b = Buffer.alloc(1);
    b.writeInt8((v << 24) >> 24);
    return this.push(b);
  }

  type(t: number): this {
    this.types.push(this.size);
    return this.i8(t);
  }

  i16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    return this.push(b);
  }

  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v | 0);
    return this.push(b);
  }

  length(n: number): this {
    this.lengths.push(this.size);
    return this.i32(n);
  }

  i64(v: number | bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt(v));
    return this.push(b);
  }

  string(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.length(b.length).push(b);
  }

  /** Strict message header (version 1). */
  messageBegin(name: string, mtype: number, seqid: number): this {
    return this.i32(0x80010000 | mtype | 0)
      .string(name)
      .i32(seqid);
  }

  field(type: number, id: number): this {
    return this.type(type).i16(id);
  }

  stop(): this {
    return this.type(T.STOP);
  }

  mapBegin(k: number, v: number, n: number): this {
    return this.type(k).type(v).length(n);
  }

  listBegin(e: number, n: number): this {
    return this.type(e).length(n);
  }

  stringMap(m: Record<string, string>): this {
    const entries = Object.entries(m);
    this.mapBegin(T.STRING, T.STRING, entries.length);
    for (const [k, v] of entries) this.string(k).string(v);
    return this;
  }

  build(name: string): Frame {
    return { name, bytes: Buffer.concat(this.parts, this.size), lengths: [...this.lengths], types: [...this.types] };
  }
}

type Registry = Record<string, Record<string, Array<Record<string, string>>>>;
interface Info {
  name: string;
  version: string;
  sdk_version: string;
  min_sdk_version: string;
}

/** The valid calls, built with FrameBuilder. */
export const encode = {
  ping: (seqid = 0) => new FrameBuilder().messageBegin('ping', MT.CALL, seqid).stop().build('ping'),
  shutdown: (seqid = 0) => new FrameBuilder().messageBegin('shutdown', MT.CALL, seqid).stop().build('shutdown'),
  extensions: (seqid = 0) => new FrameBuilder().messageBegin('extensions', MT.CALL, seqid).stop().build('extensions'),
  options: (seqid = 0) => new FrameBuilder().messageBegin('options', MT.CALL, seqid).stop().build('options'),
  call: (registry: string, item: string, request: Record<string, string>, seqid = 0) =>
    new FrameBuilder()
      .messageBegin('call', MT.CALL, seqid)
      .field(T.STRING, 1)
      .string(registry)
      .field(T.STRING, 2)
      .string(item)
      .field(T.MAP, 3)
      .stringMap(request)
      .stop()
      .build(`call:${registry}/${item}`),
  query: (sql: string, seqid = 0, method: 'query' | 'getQueryColumns' = 'query') =>
    new FrameBuilder().messageBegin(method, MT.CALL, seqid).field(T.STRING, 1).string(sql).stop().build(method),
  deregisterExtension: (uuid: number | bigint, seqid = 0) =>
    new FrameBuilder().messageBegin('deregisterExtension', MT.CALL, seqid).field(T.I64, 1).i64(uuid).stop().build('deregisterExtension'),
  registerExtension: (info: Info, registry: Registry, seqid = 0) => {
    const b = new FrameBuilder().messageBegin('registerExtension', MT.CALL, seqid).field(T.STRUCT, 1);
    b.field(T.STRING, 1).string(info.name).field(T.STRING, 2).string(info.version);
    b.field(T.STRING, 3).string(info.sdk_version).field(T.STRING, 4).string(info.min_sdk_version).stop();
    b.field(T.MAP, 2);
    const regs = Object.entries(registry);
    b.mapBegin(T.STRING, T.MAP, regs.length);
    for (const [r, items] of regs) {
      b.string(r);
      const entries = Object.entries(items);
      b.mapBegin(T.STRING, T.LIST, entries.length);
      for (const [item, routes] of entries) {
        b.string(item).listBegin(T.MAP, routes.length);
        for (const route of routes) b.stringMap(route);
      }
    }
    return b.stop().build('registerExtension');
  },
};

type GeneratedClient = Record<string, (...args: unknown[]) => Promise<unknown>>;

/** What the generated client writes for `method(args)` (its seqid forced to `seqid`). */
export function encodeWithGeneratedClient(service: 'extension' | 'manager', method: string, args: unknown[], seqid = 0): Buffer {
  const out: Buffer[] = [];
  const ctor = service === 'manager' ? ExtensionManagerClientCtor : ExtensionClientCtor;
  const client = new ctor(
    makeWriteTransport((b) => out.push(Buffer.from(b))),
    OsqueryBinaryProtocol,
  ) as unknown as GeneratedClient & { _seqid: number };
  client._seqid = seqid - 1;
  // The call never gets a reply; its promise is dropped on purpose.
  client[method]!(...args).catch(() => undefined);
  return Buffer.concat(out);
}

export const TABLE_REQUEST = {
  action: 'generate',
  context: '{"constraints":[{"name":"k","affinity":"TEXT","list":[{"op":2,"expr":"a"}]}],"colsUsed":["k","v"]}',
};
export const FUZZ_REGISTRY: Registry = {
  config: {},
  distributed: {},
  logger: { fuzz_logger: [] },
  table: {
    fuzz_reg_t: [
      { id: 'column', name: 'k', type: 'TEXT', op: '1' },
      { id: 'column', name: 'n', type: 'INTEGER', op: '0' },
    ],
  },
};

/** Seed calls for an extension's own socket (no shutdown: a valid one legitimately stops it). */
export function extensionSeeds(tableName: string): Frame[] {
  return [
    encode.ping(0),
    encode.ping(7),
    encode.call('table', tableName, TABLE_REQUEST, 1),
    encode.call('table', tableName, { action: 'columns' }, 2),
    encode.call('logger', 'fuzz_log', { status: 'true', log: '[{"s":0,"f":"a.cpp","i":1,"m":"hello","h":"h","c":"c","u":1}]' }, 3),
    encode.call('logger', 'fuzz_log', { string: '{"name":"q","hostIdentifier":"h","columns":{"a":"1"}}' }, 4),
  ];
}

/** Seed calls for osqueryd's manager socket. */
export function managerSeeds(): Frame[] {
  return [
    encode.ping(0),
    encode.call('table', 'osquery_info', { action: 'generate', context: '{"constraints":[]}' }, 1),
    encode.call('config', 'filesystem', { action: 'genConfig' }, 2),
    encode.registerExtension({ name: 'fuzz_reg', version: '1.0', sdk_version: '1.8.0', min_sdk_version: '' }, FUZZ_REGISTRY, 3),
    encode.query('select version, pid from osquery_info', 4),
    encode.query("select name, type from osquery_flags where name = 'pidfile'", 5, 'getQueryColumns'),
    encode.extensions(6),
    encode.options(7),
    // Far from any real (16-bit) uuid, so a few flipped bits cannot deregister the legitimate extension.
    encode.deregisterExtension(0x7f00_0000_0000_0000n, 8),
    encode.shutdown(9), // a no-op on the manager
  ];
}

const HUGE_LENGTHS = [0x7fffffff, -1, -0x80000000, 64 * 1024 * 1024 + 1, 16 * 1024 * 1024, 0x10000, 1025, 0xffff];

/** Names of the mutation strategies, for outcome counts. */
export type Mutation =
  | 'random-bytes'
  | 'bit-flip'
  | 'byte-set'
  | 'insert'
  | 'delete'
  | 'truncate'
  | 'length-huge'
  | 'length-off'
  | 'type-byte'
  | 'duplicate'
  | 'splice'
  | 'header';

/** One fuzz input: a mutated seed or random bytes. */
export function mutate(rng: Rng, seeds: readonly Frame[]): { mutation: Mutation; seed: string; bytes: Buffer } {
  const seed = rng.pick(seeds);
  const b = Buffer.from(seed.bytes);
  const mutation = rng.weighted<Mutation>([
    [2, 'random-bytes'],
    [2, 'bit-flip'],
    [2, 'byte-set'],
    [1, 'insert'],
    [1, 'delete'],
    [2, 'truncate'],
    [3, 'length-huge'],
    [2, 'length-off'],
    [3, 'type-byte'],
    [1, 'duplicate'],
    [1, 'splice'],
    [1, 'header'],
  ]);
  const at = () => rng.int(Math.max(1, b.length));
  switch (mutation) {
    case 'random-bytes': {
      const n = rng.weighted<number>([
        [3, rng.range(1, 16)],
        [2, rng.range(17, 256)],
        [1, rng.range(257, 4096)],
      ]);
      // Sometimes keep a plausible strict header so the body parser is reached.
      const bytes = rng.bytes(n);
      if (rng.bool(0.3) && n >= 4) bytes.writeUInt32BE(0x80010001, 0);
      return { mutation, seed: 'none', bytes };
    }
    case 'bit-flip': {
      for (let k = rng.range(1, 4); k > 0; k--) {
        const i = at();
        b[i] = b[i]! ^ (1 << rng.int(8));
      }
      return { mutation, seed: seed.name, bytes: b };
    }
    case 'byte-set': {
      for (let k = rng.range(1, 3); k > 0; k--) b[at()] = rng.pick([0, 1, 0x7f, 0x80, 0xff, rng.int(256)]);
      return { mutation, seed: seed.name, bytes: b };
    }
    case 'insert': {
      const i = at();
      return { mutation, seed: seed.name, bytes: Buffer.concat([b.subarray(0, i), rng.bytes(rng.range(1, 32)), b.subarray(i)]) };
    }
    case 'delete': {
      const i = at();
      const n = rng.range(1, Math.max(1, Math.min(32, b.length - i)));
      return { mutation, seed: seed.name, bytes: Buffer.concat([b.subarray(0, i), b.subarray(i + n)]) };
    }
    case 'truncate':
      return { mutation, seed: seed.name, bytes: b.subarray(0, rng.int(b.length)) };
    case 'length-huge':
    case 'length-off': {
      if (seed.lengths.length === 0) return { mutation, seed: seed.name, bytes: b.subarray(0, rng.int(b.length)) };
      const off = rng.pick(seed.lengths);
      const cur = b.readInt32BE(off);
      const v = mutation === 'length-huge' ? rng.pick(HUGE_LENGTHS) : cur + rng.pick([-2, -1, 1, 2, 5, 100]);
      b.writeInt32BE(v | 0, off);
      return { mutation, seed: seed.name, bytes: b };
    }
    case 'type-byte': {
      if (seed.types.length === 0) return { mutation, seed: seed.name, bytes: b };
      const off = rng.pick(seed.types);
      b[off] = rng.weighted<number>([
        [3, rng.pick(VALID_TYPES)],
        [1, rng.pick([T.VOID, T.UUID, 5, 7, 9, 17, 0x7f, 0xff])],
        [1, T.STOP],
      ]);
      return { mutation, seed: seed.name, bytes: b };
    }
    case 'duplicate': {
      const i = at();
      const j = Math.min(b.length, i + rng.range(1, 64));
      const seg = b.subarray(i, j);
      return { mutation, seed: seed.name, bytes: Buffer.concat([b.subarray(0, j), seg, seg, b.subarray(j)]) };
    }
    case 'splice': {
      const other = rng.pick(seeds).bytes;
      return { mutation, seed: seed.name, bytes: Buffer.concat([b.subarray(0, at()), other.subarray(rng.int(other.length))]) };
    }
    case 'header': {
      // Version word, message type, name length or old-style (non-strict) header.
      const choice = rng.int(4);
      if (choice === 0) b.writeInt32BE(rng.pick([0x80020001, 0x80010000, 0x8001ff01, 0x00010001, 0x7fffffff]) | 0, 0);
      else if (choice === 1) b[3] = rng.pick([0, 2, 3, 4, 5, 0xff]);
      else if (choice === 2 && seed.lengths.length > 0) b.writeInt32BE(rng.pick([0, 1024, 1025, -1, 0x7fffffff]) | 0, seed.lengths[0]!);
      else {
        // Old-style header: name length, name, type byte, seqid.
        const name = rng.pick(['ping', 'call', 'query', 'x'.repeat(rng.range(0, 1100))]);
        const hdr = Buffer.alloc(4 + name.length + 5);
        hdr.writeInt32BE(name.length, 0);
        hdr.write(name, 4);
        hdr[4 + name.length] = rng.pick([1, 2, 3, 4, 9]);
        return { mutation, seed: seed.name, bytes: Buffer.concat([hdr, rng.bytes(rng.range(0, 16)), Buffer.from([0])]) };
      }
      return { mutation, seed: seed.name, bytes: b };
    }
  }
}

export type ProbeOutcome = 'closed-by-server' | 'answered' | 'cut-by-test' | 'half-closed' | 'connect-failed';

export interface ProbeResult {
  outcome: ProbeOutcome;
  received: number;
}

/**
 * Open a connection, write `chunks` (each its own write), then either
 * half-close at once (`endAfterWrite`) or keep the connection open until the
 * server closes it or `boundMs` passes. The socket is always destroyed before
 * the promise settles; the promise always settles within about boundMs.
 */
export function probe(path: string, chunks: readonly Buffer[], opts: { boundMs: number; endAfterWrite: boolean }): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let received = 0;
    let connected = false;
    let done = false;
    const socket = net.createConnection({ path });
    const finish = (outcome: ProbeOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ outcome, received });
    };
    const timer = setTimeout(() => finish(received > 0 ? 'answered' : 'cut-by-test'), opts.boundMs);
    socket.on('data', (d: Buffer) => (received += d.length));
    socket.on('error', () => finish(connected ? 'closed-by-server' : 'connect-failed'));
    socket.on('close', () => finish(opts.endAfterWrite ? 'half-closed' : 'closed-by-server'));
    socket.on('connect', () => {
      connected = true;
      for (const c of chunks) socket.write(c);
      if (opts.endAfterWrite) socket.end();
    });
  });
}

/** Run `tasks` with at most `limit` in flight. */
export async function pooled<T>(tasks: ReadonlyArray<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

/** Resident set size of a process in KiB (/proc/<pid>/status VmRSS). */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** Open socket descriptors of a process (/proc/<pid>/fd). */
export function socketCount(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

/** A raw client connection for hand-written frames: write, collect replies, see whether the server closed it. */
export class RawConnection {
  private readonly socket: net.Socket;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closedByPeer = false;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closedByPeer = true;
        this.wake();
        resolve();
      }),
    );
  }

  static connect(path: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ path });
      s.once('connect', () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(b: Buffer): Promise<void> {
    return new Promise((resolve) => (this.socket.write(b) ? resolve() : this.socket.once('drain', () => resolve())));
  }

  /** Bytes received so far (not consumed). */
  get received(): Buffer {
    return this.buf;
  }

  /** Wait until at least `n` bytes arrived, the peer closed, or `boundMs` passed; returns what arrived. */
  async waitFor(n: number, boundMs: number): Promise<Buffer> {
    const deadline = Date.now() + boundMs;
    while (this.buf.length < n && !this.closedByPeer && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.buf;
  }

  /** Wait for the server to close the connection, at most `boundMs`; true when it did. */
  async waitClosed(boundMs: number): Promise<boolean> {
    await this.waitFor(Number.MAX_SAFE_INTEGER, boundMs);
    return this.closedByPeer;
  }

  /** Drop what was received so far. */
  consume(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    return b;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The message type of a reply frame (strict header): 2 REPLY, 3 EXCEPTION. */
export function replyType(frame: Buffer): number {
  if (frame.length < 4) return -1;
  return frame.readUInt32BE(0) & 0xff;
}

/** The method name of a reply frame (strict header). */
export function replyName(frame: Buffer): string {
  if (frame.length < 8) return '';
  const n = frame.readInt32BE(4);
  return frame.subarray(8, 8 + n).toString('utf8');
}
