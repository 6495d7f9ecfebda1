/**
 * Encoding and decoding an ExtensionResponse of 1,000 rows x 10 columns (the
 * struct a table `call` returns) in-process (issue 14, ADR 0010): the codec in
 * src/osquery/wire, the generated code on the `thrift` npm runtime (the
 * reference), and thriftrw when it can be imported (it is not a dependency:
 * install it anywhere, e.g. `npm install --prefix /tmp/trw thriftrw@3.12.0`,
 * and set THRIFTRW=/tmp/trw/node_modules/thriftrw/index.js). Alternated A B C
 * per round, median of rounds, ms per message.
 * Run: node dist/bench/thrift-codec.js
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WireWriter } from '../src/osquery/wire/writer.js';
import { WireReader } from '../src/osquery/wire/reader.js';
import { readResponse, writeResponse } from '../src/osquery/wire/structs.js';
import { refReader, refTypes, refWriter } from '../src/osquery/reference.js';
import type { ExtensionResponse } from '../src/osquery/protocol.js';
import { median, round, writeResult } from './lib.js';
import { BENCH_ROWS } from './thrift-fixture.js';

const ROUNDS = 7;
const PER_ROUND = 40;
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const value: ExtensionResponse = { status: { code: 0, message: 'OK', uuid: 0 }, response: BENCH_ROWS };

interface Codec {
  encode(): Buffer;
  decode(b: Buffer): unknown;
}

const ours: Codec = {
  encode() {
    const w = new WireWriter();
    writeResponse(w, value);
    return w.finish();
  },
  decode: (b) => readResponse(new WireReader(b, 0, b.length)),
};

const reference: Codec = {
  encode() {
    const { proto, bytes } = refWriter();
    new refTypes.ExtensionResponse(value).write(proto);
    return bytes();
  },
  decode(b) {
    const s = new refTypes.ExtensionResponse();
    s.read(refReader(b));
    return s;
  },
};

interface ThriftRwStruct {
  toBuffer(v: unknown): Buffer;
  fromBuffer(b: Buffer): unknown;
}

async function thriftrw(): Promise<Codec | undefined> {
  try {
    const mod = (await import(process.env.THRIFTRW ?? 'thriftrw')) as { Thrift: new (o: object) => { getType(n: string): ThriftRwStruct } };
    const source = readFileSync(join(repo, 'proto/osquery/osquery.thrift'), 'utf8');
    const t = new mod.Thrift({ source, strict: false, defaultAsUndefined: false }).getType('ExtensionResponse');
    return { encode: () => t.toBuffer(value), decode: (b) => t.fromBuffer(b) };
  } catch {
    return undefined;
  }
}

function time(fn: () => unknown): number {
  const start = performance.now();
  for (let i = 0; i < PER_ROUND; i++) fn();
  return (performance.now() - start) / PER_ROUND;
}

async function main(): Promise<void> {
  const codecs: Record<string, Codec> = { ours, thrift_npm_generated: reference };
  const rw = await thriftrw();
  if (rw) codecs.thriftrw = rw;
  const bytes = ours.encode();
  for (const [name, c] of Object.entries(codecs)) {
    if (!c.encode().equals(bytes)) throw new Error(`${name} encodes differently`);
  }
  const enc: Record<string, number[]> = {};
  const dec: Record<string, number[]> = {};
  for (const c of Object.values(codecs)) time(() => c.decode(c.encode())); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, c] of Object.entries(codecs)) {
      (enc[name] ??= []).push(time(() => c.encode()));
      (dec[name] ??= []).push(time(() => c.decode(bytes)));
    }
  }
  const result = {
    message: 'ExtensionResponse, 1000 rows x 10 columns',
    bytes: bytes.length,
    rounds: ROUNDS,
    per_round: PER_ROUND,
    thriftrw: rw ? `measured (${process.env.THRIFTRW ?? 'thriftrw'})` : 'not importable: skipped',
    encode_ms: Object.fromEntries(Object.entries(enc).map(([k, v]) => [k, round(median(v))])),
    decode_ms: Object.fromEntries(Object.entries(dec).map(([k, v]) => [k, round(median(v))])),
  };
  const file = writeResult('thrift-codec', result);
  console.log(JSON.stringify(result, null, 2));
  console.log(`written to ${file}`);
}

await main();
