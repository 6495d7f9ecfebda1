// issue 14: the codec in src/osquery/wire against the reference (the code Apache Thrift's compiler
// generated from proto/osquery/osquery.thrift, on the `thrift` npm runtime). For every method of
// the IDL, randomised calls and replies (empty and huge maps, unicode strings, i32/i64 edge
// values, handler errors, unknown methods) are encoded both ways and must be byte-identical, and
// each side decodes the other's bytes to the values that went in. The scanner finds each message
// whole however it is split into chunks, and never before its last byte.
import { describe, expect, it } from 'vitest';
import { Rng, fuzzSeed } from '../helpers/fuzz.js';
import { MessageType, TApplicationExceptionType } from '../../src/osquery/wire/constants.js';
import { METHODS, readArgs, readResult, writeArgs, writeResult } from '../../src/osquery/wire/methods.js';
import { WireReader } from '../../src/osquery/wire/reader.js';
import { FrameScanner, type Frame } from '../../src/osquery/wire/scanner.js';
import { WireWriter } from '../../src/osquery/wire/writer.js';
import { writeStatus } from '../../src/osquery/wire/structs.js';
import { readApplicationError } from '../../src/osquery/wire/exception.js';
import { encodeException } from '../../src/osquery/processor.js';
import {
  ExtensionManagerClientCtor,
  RefManagerProcessor,
  RefTApplicationException,
  makeWriteTransport,
  OsqueryBinaryProtocol,
  refReader,
  refTypes,
  refWriter,
  type GeneratedClient,
} from '../../src/osquery/reference.js';
import type { ExtensionRegistry, InternalExtensionList, InternalOptionList, PluginResponse } from '../../src/osquery/protocol.js';

const ROUNDS = 25;
const I32_EDGES = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 42];
const I64_EDGES = [0, 1, -1, 2 ** 31, -(2 ** 31) - 1, 2 ** 32, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, -(2 ** 63)];
// Code points (no lone surrogates: a decoded U+FFFD would not equal what went in).
const ALPHABETS = ['abcdefghij_-./0123456789', 'äöüßéèàç', '日本語の文字列', '😀🚀👩‍💻🏳️‍🌈', 'Ωπ∑√∞≠', '\u0000\t\n"\\\''].map((a) => [...a]);
/** The first n code points of s. */
const cut = (s: string, n: number) => [...s].slice(0, n).join('');

function randomString(rng: Rng): string {
  const len = rng.weighted<number>([
    [3, 0],
    [10, rng.range(1, 20)],
    [4, rng.range(40, 120)],
    [0.3, rng.range(10_000, 70_000)],
  ]);
  if (len > 200) return cut(pieceOf(rng, 64).repeat(Math.ceil(len / 16)), len);
  return pieceOf(rng, len);
}

function pieceOf(rng: Rng, len: number): string {
  let s = '';
  while (s.length < len) {
    const chars = rng.bool(0.7) ? ALPHABETS[0]! : rng.pick(ALPHABETS);
    s += chars[rng.int(chars.length)]!;
  }
  return s;
}

function randomMap(rng: Rng, maxSize: number): Record<string, string> {
  const size = rng.weighted<number>([
    [2, 0],
    [8, rng.range(1, 8)],
    [1, rng.range(0, maxSize)],
  ]);
  const m: Record<string, string> = {};
  for (let i = 0; i < size; i++) {
    const k = rng.bool(0.2) ? String(rng.int(1000)) : cut(randomString(rng), 30) || `k${i}`;
    if (k === '__proto__') continue;
    m[k] = randomString(rng);
  }
  return m;
}

function randomRows(rng: Rng): PluginResponse {
  const n = rng.weighted<number>([
    [2, 0],
    [6, rng.range(1, 5)],
    [1, rng.range(100, 1000)],
  ]);
  return Array.from({ length: n }, () => randomMap(rng, 12));
}

const randomI64 = (rng: Rng) => (rng.bool(0.5) ? rng.pick(I64_EDGES) : rng.range(-1e9, 1e9));
const randomStatus = (rng: Rng) => ({
  code: rng.bool(0.5) ? rng.pick(I32_EDGES) : rng.range(-1e6, 1e6),
  message: randomString(rng),
  uuid: randomI64(rng),
});
const randomResponse = (rng: Rng) => ({ status: randomStatus(rng), response: randomRows(rng) });
const randomInfo = (rng: Rng) => ({
  name: randomString(rng),
  version: randomString(rng),
  sdk_version: randomString(rng),
  min_sdk_version: randomString(rng),
});

function randomRegistry(rng: Rng): ExtensionRegistry {
  const reg: ExtensionRegistry = {};
  for (const kind of ['config', 'distributed', 'logger', 'table'].filter(() => rng.bool(0.7))) {
    reg[kind] = {};
    for (let i = rng.int(4); i > 0; i--) reg[kind]![`${kind}_${cut(randomString(rng), 10)}${i}`] = randomRows(rng).slice(0, 30);
  }
  return reg;
}

function randomExtensionList(rng: Rng): InternalExtensionList {
  const out: InternalExtensionList = {};
  for (let i = rng.int(5); i > 0; i--) out[BigInt(rng.bool(0.3) ? rng.pick(I64_EDGES) : rng.int(65536)).toString()] = randomInfo(rng);
  if (rng.bool(0.2)) out['9223372036854775807'] = randomInfo(rng);
  return out;
}

function randomOptionList(rng: Rng): InternalOptionList {
  const out: InternalOptionList = {};
  for (let i = rng.int(6); i > 0; i--)
    out[`opt_${cut(randomString(rng), 12)}${i}`] = {
      value: randomString(rng),
      default_value: randomString(rng),
      type: rng.pick(['string', 'bool', 'int32']),
    };
  return out;
}

/** Per method: random call arguments and a random return value. */
const GENERATORS: Record<string, { args: (rng: Rng) => unknown[]; result: (rng: Rng) => unknown }> = {
  ping: { args: () => [], result: randomStatus },
  call: { args: (rng) => [randomString(rng), randomString(rng), randomMap(rng, 3000)], result: randomResponse },
  shutdown: { args: () => [], result: () => undefined },
  extensions: { args: () => [], result: randomExtensionList },
  options: { args: () => [], result: randomOptionList },
  registerExtension: { args: (rng) => [randomInfo(rng), randomRegistry(rng)], result: randomStatus },
  deregisterExtension: { args: (rng) => [randomI64(rng)], result: randomStatus },
  query: { args: (rng) => [randomString(rng)], result: randomResponse },
  getQueryColumns: { args: (rng) => [randomString(rng)], result: randomResponse },
};

function ourCall(method: string, args: unknown[], seqid: number): Buffer {
  const w = new WireWriter();
  w.messageBegin(method, MessageType.CALL, seqid);
  writeArgs(w, METHODS[method]!, args);
  return w.finish();
}

function ourReply(method: string, value: unknown, seqid: number): Buffer {
  const w = new WireWriter();
  w.messageBegin(method, MessageType.REPLY, seqid);
  writeResult(w, METHODS[method]!, value);
  return w.finish();
}

/** One message through the scanner, fed in random chunks; it must appear exactly at the last chunk. */
function scan(bytes: Buffer, rng: Rng): Frame {
  const scanner = new FrameScanner(1 << 30);
  let offset = 0;
  let frame: Frame | undefined;
  while (offset < bytes.length) {
    const n = Math.min(bytes.length - offset, rng.bool(0.3) ? 1 : rng.range(1, 5000));
    expect(frame).toBeUndefined();
    scanner.push(bytes.subarray(offset, offset + n));
    offset += n;
    frame = scanner.next();
  }
  expect(frame).toBeDefined();
  expect(scanner.next()).toBeUndefined();
  return frame!;
}

function refCall(method: string, args: unknown[], seqid: number): Buffer {
  const out: Buffer[] = [];
  const client = new ExtensionManagerClientCtor(
    makeWriteTransport((b) => out.push(Buffer.from(b))),
    OsqueryBinaryProtocol,
  );
  client._seqid = seqid - 1;
  (client[method] as (...a: unknown[]) => Promise<unknown>)(...args).catch(() => undefined);
  return Buffer.concat(out);
}

/** The generated processor serving `callBytes` with a handler that returns `value` (or throws `error`). */
async function refServe(method: string, callBytes: Buffer, value: unknown, error?: string): Promise<{ bytes: Buffer; args: unknown[] }> {
  let seen: unknown[] = [];
  const impl = (...a: unknown[]) => {
    seen = a;
    if (error !== undefined) throw new Error(error);
    return value;
  };
  // The generated processor picks promise style by arity: give each method its own.
  const arity: Record<string, number> = { call: 3, registerExtension: 2, deregisterExtension: 1, query: 1, getQueryColumns: 1 };
  const handler = Object.fromEntries(
    Object.keys(METHODS).map((m) => {
      const n = arity[m] ?? 0;
      const fn =
        n === 3
          ? async (a: unknown, b: unknown, c: unknown) => impl(a, b, c)
          : n === 2
            ? async (a: unknown, b: unknown) => impl(a, b)
            : n === 1
              ? async (a: unknown) => impl(a)
              : async () => impl();
      return [m, fn];
    }),
  );
  const out: Buffer[] = [];
  const output = new OsqueryBinaryProtocol(makeWriteTransport((b) => out.push(Buffer.from(b))) as never);
  new RefManagerProcessor(handler).process(refReader(callBytes), output);
  for (let i = 0; i < 1000 && out.length === 0; i++) await new Promise((r) => setImmediate(r));
  expect(out.length, `reference processor answered ${method}`).toBeGreaterThan(0);
  return { bytes: Buffer.concat(out), args: seen };
}

/** The generated client decoding reply `bytes` for `method`: its result, or its error. */
function refDecodeReply(method: string, bytes: Buffer): { value?: unknown; error?: unknown } {
  const client = new ExtensionManagerClientCtor(
    makeWriteTransport(() => undefined),
    OsqueryBinaryProtocol,
  ) as GeneratedClient;
  const proto = refReader(bytes);
  const header = proto.readMessageBegin() as { fname: string; mtype: number; rseqid: number };
  expect(header.fname).toBe(method);
  let got: { value?: unknown; error?: unknown } = {};
  client._reqs[header.rseqid] = (error, value) => (got = error ? { error } : { value });
  (client[`recv_${method}`] as (i: unknown, m: number, s: number) => void).call(client, proto, header.mtype, header.rseqid);
  return got;
}

const plain = (v: unknown) => JSON.parse(JSON.stringify(v ?? null)) as unknown;

/** osquery's i64 map keys decode through a JS number (as the generated code does): 2^63-1 comes back rounded. */
function viaNumber(method: string, v: unknown): unknown {
  if (method !== 'extensions' || !v) return plain(v);
  return plain(Object.fromEntries(Object.entries(v as object).map(([k, x]) => [String(Number(k)), x])));
}

describe('codec against the generated reference (issue 14)', () => {
  for (const method of Object.keys(METHODS)) {
    it(`${method}: calls, replies and errors are byte-identical and decode both ways`, async () => {
      const rng = Rng.forTarget(`codec-${method}`, fuzzSeed);
      const gen = GENERATORS[method]!;
      for (let round = 0; round < ROUNDS; round++) {
        const seqid = rng.bool(0.5) ? 0 : rng.pick([1, 7, 2 ** 31 - 1, -1]);
        const args = gen.args(rng);
        const value = gen.result(rng);
        const where = `${method} round ${round} (FUZZ_SEED=${fuzzSeed})`;

        // Call: identical bytes; each side decodes the other's.
        const call = ourCall(method, args, seqid);
        const refCallBytes = refCall(method, args, seqid);
        expect(call.equals(refCallBytes), where).toBe(true);
        const frame = scan(refCallBytes, rng);
        expect([frame.name, frame.type, frame.seqid]).toEqual([method, MessageType.CALL, seqid]);
        expect(plain(readArgs(new WireReader(frame.buf, frame.body, frame.end), METHODS[method]!)), where).toEqual(plain(args));

        // Reply: the generated processor's bytes for the same value equal ours.
        const served = await refServe(method, call, value);
        expect(plain(served.args), where).toEqual(plain(args));
        const reply = ourReply(method, value, seqid);
        expect(reply.equals(served.bytes), where).toBe(true);
        const rf = scan(served.bytes, rng);
        expect([rf.name, rf.type, rf.seqid]).toEqual([method, MessageType.REPLY, seqid]);
        const decoded = readResult(new WireReader(rf.buf, rf.body, rf.end), METHODS[method]!).value;
        expect(plain(decoded), where).toEqual(viaNumber(method, value));
        expect(plain(refDecodeReply(method, reply).value), where).toEqual(viaNumber(method, value));

        // A handler error: TApplicationException UNKNOWN with the message, identical bytes.
        if (round % 4 === 0) {
          const message = randomString(rng) || 'boom';
          const failed = await refServe(method, call, undefined, message);
          const ours = encodeException(method, seqid, message, TApplicationExceptionType.UNKNOWN);
          expect(ours.equals(failed.bytes), where).toBe(true);
          const ef = scan(failed.bytes, rng);
          expect(ef.type).toBe(MessageType.EXCEPTION);
          expect(readApplicationError(new WireReader(ef.buf, ef.body, ef.end)).message).toBe(message);
          const refErr = refDecodeReply(method, ours).error as { message: string };
          expect(refErr).toBeInstanceOf(RefTApplicationException);
          expect(refErr.message).toBe(message);
        }
      }
    });
  }

  it('an unknown method gets UNKNOWN_METHOD with its type on the wire (the runtime leaves the type out)', async () => {
    const call = ourCall('ping', [], 3);
    const renamed = Buffer.concat([call.subarray(0, 4), Buffer.from([0, 0, 0, 4]), Buffer.from('pong'), call.subarray(12)]);
    const served = await refServe('ping', renamed, undefined);
    const ours = encodeException('pong', 3, 'Unknown function pong', TApplicationExceptionType.UNKNOWN_METHOD);
    // The reference with its type actually set (`code` is what its write() reads).
    const { proto, bytes } = refWriter();
    proto.writeMessageBegin('pong', MessageType.EXCEPTION, 3);
    const x = new RefTApplicationException(TApplicationExceptionType.UNKNOWN_METHOD, 'Unknown function pong') as unknown as {
      code: number;
      write(o: unknown): void;
    };
    x.code = TApplicationExceptionType.UNKNOWN_METHOD;
    x.write(proto);
    proto.writeMessageEnd();
    expect(ours.equals(bytes())).toBe(true);
    // What the runtime really sends differs only by that field; both decode to the same message.
    const f = scan(served.bytes, new Rng(1));
    expect(readApplicationError(new WireReader(f.buf, f.body, f.end))).toMatchObject({ message: 'Unknown function pong', type: 0 });
    const g = scan(ours, new Rng(2));
    expect(readApplicationError(new WireReader(g.buf, g.body, g.end))).toMatchObject({ message: 'Unknown function pong', type: 1 });
  });

  it('ExtensionException and ExtensionStatus structs encode like the generated structs', () => {
    const rng = Rng.forTarget('codec-structs', fuzzSeed);
    for (let i = 0; i < ROUNDS; i++) {
      const st = randomStatus(rng);
      for (const ctor of [refTypes.ExtensionStatus, refTypes.ExtensionException]) {
        const { proto, bytes } = refWriter();
        new ctor(st).write(proto);
        const w = new WireWriter();
        writeStatus(w, st);
        expect(w.finish().equals(bytes())).toBe(true);
      }
    }
  });

  it('the scanner keeps several messages in one chunk apart and refuses garbage', () => {
    const a = ourCall('ping', [], 0);
    const b = ourCall('call', ['table', 't', { action: 'generate' }], 1);
    const scanner = new FrameScanner(1 << 20);
    scanner.push(Buffer.concat([a, b, b.subarray(0, 10)]));
    expect(scanner.next()?.name).toBe('ping');
    expect(scanner.next()?.name).toBe('call');
    expect(scanner.next()).toBeUndefined();
    scanner.push(b.subarray(10));
    expect(scanner.next()?.seqid).toBe(1);
    for (const bad of [
      Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      Buffer.from([0x80, 0x02, 0, 1, 0, 0, 0, 0]),
      Buffer.concat([a.subarray(0, 16), Buffer.from([0x63, 0, 1])]),
    ]) {
      const s = new FrameScanner(1 << 20);
      s.push(bad);
      expect(() => s.next()).toThrow(/not a thrift message|bad version|invalid type/);
    }
    const tooDeep = Buffer.concat([a.subarray(0, 16), Buffer.alloc(3 * 70, 0).map((_, i) => (i % 3 === 0 ? 12 : i % 3 === 2 ? 1 : 0))]);
    const s = new FrameScanner(1 << 20);
    s.push(tooDeep);
    expect(() => s.next()).toThrow(/nesting deeper/);
  });
});
