// Issue 9 (fuzz): JSON-RPC response decoding. decodeResponse either returns a well-typed result
// for the method or throws a DeviceError (a LauncherError) with a device code; never anything
// else (no TypeError, no RangeError). Inputs: random JSON values, each method's valid response
// (docs/protocol/device.md#methods) mutated structurally (wrong types, missing/extra/case-folded keys, non-null
// `err`, `error` objects) and textually (truncation, flipped/inserted bytes, invalid UTF-8),
// deep nesting, huge strings. A few bodies also go through a real HTTP server on 127.0.0.1 and
// the DeviceClient.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LauncherError } from '../../src/errors.js';
import { DeviceClient } from '../../src/device/client.js';
import { decodeResponse } from '../../src/device/decode.js';
import { DeviceError } from '../../src/device/device-error.js';
import { DEVICE_METHODS, type DeviceMethod } from '../../src/device/types.js';
import { FuzzRun, fuzzIterations, type Rng } from '../helpers/fuzz.js';

const RANDOM = fuzzIterations(1500);
const MUTATED = fuzzIterations(3000);
const DEEP = fuzzIterations(30);
const HTTP = fuzzIterations(60);
const timeoutFor = (n: number) => 60_000 + n * 20;

/** Valid results per method (docs/protocol/device.md#methods examples). */
const VALID: Record<DeviceMethod, Record<string, unknown>> = {
  RequestEnrollment: {
    node_key: 'acme::eyJ',
    node_invalid: false,
    wrong_region: false,
    disable_device: false,
    deployment_urls: { enrollment_url: 'https://e', control_server_url: 'https://c', osquery_publisher_url: 'https://p' },
    agent_ingester_auth_token: 'tok_abc',
    agent_ingester_hpke_public_key: 'k1:BASE64PUB',
    agent_ingester_hpke_psk: 'p1:BASE64PSK',
  },
  RequestConfig: {
    config: '{"options":{"logger_snapshot_event_type":true},"schedule":{"uptime":{"query":"select * from uptime","interval":3600}}}',
    node_invalid: false,
    disable_device: false,
  },
  PublishLogs: { message: 'ok', node_invalid: false, disable_device: false },
  RequestQueries: {
    Queries: { queries: { kolide_adhoc_9f2: 'select version from osquery_info' }, discovery: { d: 'select 1' }, accelerate: 300 },
    node_invalid: false,
    disable_device: false,
  },
  PublishResults: { message: '', node_invalid: false, disable_device: false, error_code: '' },
  CheckHealth: { status: 1 },
};

const DEVICE_CODES = new Set(['E_DEVICE_RESPONSE', 'E_DEVICE_REJECTED']);

const isRecordOfStrings = (v: unknown) =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

/** Throws unless `r` has exactly the decoded types for `method`. */
function assertWellTyped(method: DeviceMethod, r: unknown): void {
  const o = r as Record<string, unknown>;
  const str = (k: string) => expect(typeof o[k], `${method}.${k}`).toBe('string');
  const bool = (k: string) => expect(typeof o[k], `${method}.${k}`).toBe('boolean');
  expect(typeof o).toBe('object');
  if (method === 'CheckHealth') {
    expect(Number.isInteger(o.status) && (o.status as number) >= -(2 ** 31) && (o.status as number) < 2 ** 31, 'status int32').toBe(true);
    str('errorCode');
    return;
  }
  bool('nodeInvalid');
  bool('disableDevice');
  str('errorCode');
  switch (method) {
    case 'RequestEnrollment': {
      str('nodeKey');
      bool('wrongRegion');
      str('agentIngesterAuthToken');
      str('agentIngesterHpkePublicKey');
      str('agentIngesterHpkePsk');
      const urls = o.deploymentUrls as Record<string, unknown> | undefined;
      if (urls !== undefined)
        for (const k of ['enrollmentUrl', 'controlServerUrl', 'osqueryPublisherUrl']) expect(typeof urls[k]).toBe('string');
      break;
    }
    case 'RequestConfig':
      str('config');
      break;
    case 'PublishLogs':
    case 'PublishResults':
      str('message');
      break;
    case 'RequestQueries': {
      const q = o.queries as Record<string, unknown>;
      expect(isRecordOfStrings(q.queries), 'queries.queries').toBe(true);
      expect(q.discovery === undefined || isRecordOfStrings(q.discovery), 'queries.discovery').toBe(true);
      expect(Number.isSafeInteger(q.accelerate), 'queries.accelerate').toBe(true);
      break;
    }
  }
}

type Outcome = 'ok' | 'E_DEVICE_RESPONSE' | 'E_DEVICE_REJECTED';

/** Decode and check the contract; returns the outcome. */
function decodeChecked(method: DeviceMethod, body: Buffer, httpStatus = 200): Outcome {
  let result: unknown;
  try {
    result = decodeResponse(method, body, httpStatus);
  } catch (err) {
    if (!(err instanceof DeviceError) || !(err instanceof LauncherError)) {
      throw new Error(
        `decodeResponse threw ${(err as Error)?.constructor?.name ?? typeof err} instead of a DeviceError: ${(err as Error)?.message ?? String(err)}`,
        { cause: err },
      );
    }
    if (!DEVICE_CODES.has(err.code)) throw new Error(`unexpected DeviceError code ${err.code}: ${err.message}`);
    if (err.method !== method) throw new Error(`DeviceError names method ${err.method}, not ${method}`);
    if (!err.message.startsWith(`${method}: `)) throw new Error(`DeviceError message does not name the method: ${err.message}`);
    return err.code as Outcome;
  }
  assertWellTyped(method, result);
  return 'ok';
}

// ---- generators -------------------------------------------------------------------------------

function randomScalar(rng: Rng): unknown {
  return rng.weighted<() => unknown>([
    [2, () => rng.string(rng.range(0, 12))],
    [1, () => rng.pick([0, 1, -1, 300, 2 ** 31, -(2 ** 31) - 1, 2 ** 53, 1.5, -0, 1e308, Number.MAX_SAFE_INTEGER + 2])],
    [1, () => rng.bool()],
    [1, () => null],
  ])();
}

function randomJson(rng: Rng, depth = 0): unknown {
  if (depth > 5 || rng.bool(0.45)) return randomScalar(rng);
  if (rng.bool()) return Array.from({ length: rng.range(0, 4) }, () => randomJson(rng, depth + 1));
  const o: Record<string, unknown> = {};
  for (let n = rng.range(0, 5); n > 0; n--) o[randomKey(rng)] = randomJson(rng, depth + 1);
  return o;
}

const KEYS = [
  'result',
  'error',
  'err',
  'Err',
  'ERR',
  'jsonrpc',
  'id',
  'node_key',
  'NODE_KEY',
  'node_invalid',
  'disable_device',
  'Disable_Device',
  'error_code',
  'config',
  'Queries',
  'queries',
  'QUERIES',
  'discovery',
  'accelerate',
  'status',
  'message',
  'code',
  'data',
  'deployment_urls',
  'wrong_region',
  'e\u017frr',
  '\u212aey',
  '__proto__',
  'constructor',
  'toString',
  '',
];

function randomKey(rng: Rng): string {
  return rng.bool(0.7) ? rng.pick(KEYS) : rng.string(rng.range(0, 8));
}

/** Every path (key list) to a node of a JSON value. */
function paths(v: unknown, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  out.push(prefix);
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      paths(x, [...prefix, i], out);
    });
  } else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  return out;
}

/** Set (or delete) the node at `path`; a path that no longer leads anywhere leaves `root` as is. */
function setAt(root: unknown, path: Array<string | number>, value: unknown, remove = false): unknown {
  if (path.length === 0) return value;
  let parent: unknown = root;
  for (const k of path.slice(0, -1)) {
    if (typeof parent !== 'object' || parent === null) return root;
    parent = (parent as Record<string | number, unknown>)[k];
  }
  if (typeof parent !== 'object' || parent === null) return root;
  const last = path[path.length - 1]!;
  if (remove && !Array.isArray(parent)) delete (parent as Record<string | number, unknown>)[last];
  else Object.defineProperty(parent, last, { value, enumerable: true, writable: true, configurable: true });
  return root;
}

function structuralMutation(rng: Rng, method: DeviceMethod): { body: string; mutation: string } {
  const envelope: unknown = JSON.parse(JSON.stringify({ jsonrpc: '2.0', id: 3, result: VALID[method] }));
  const mutation = rng.weighted<string>([
    [4, 'replace'],
    [2, 'delete'],
    [2, 'add-key'],
    [2, 'err'],
    [2, 'error'],
    [1, 'fold-keys'],
    [1, 'huge-string'],
    [1, 'none'],
  ]);
  let root = envelope;
  const times = rng.range(1, 3);
  for (let t = 0; t < times; t++) {
    const path = rng.pick(paths(root));
    switch (mutation) {
      case 'replace':
        root = setAt(root, path, randomJson(rng, 3));
        break;
      case 'delete':
        root = setAt(root, path.length ? path : ['result'], undefined, true);
        break;
      case 'add-key': {
        root = setAt(root, [...path, randomKey(rng)], randomJson(rng, 3));
        break;
      }
      case 'err':
        root = setAt(
          root,
          ['result', rng.pick(['err', 'Err', 'ERR', 'e\u017frr'])],
          rng.pick<unknown>([null, 'boom', {}, [], false, 0, { message: 'x' }]),
        );
        break;
      case 'error':
        root = setAt(
          root,
          ['error'],
          rng.pick<unknown>([
            null,
            { code: -32000, message: 'nope' },
            { code: -32601, message: '' },
            { code: 'x' },
            'str',
            [],
            { code: 1.5 },
            { message: 7 },
            randomJson(rng, 2),
          ]),
        );
        break;
      case 'fold-keys': {
        const result = (root as { result?: unknown } | null)?.result;
        if (typeof result !== 'object' || result === null || Array.isArray(result)) break;
        for (const k of Object.keys(result)) {
          if (rng.bool()) {
            const r = result as Record<string, unknown>;
            const v = r[k];
            delete r[k];
            r[rng.bool() ? k.toUpperCase() : k.replace(/s/g, '\u017f').replace(/k/g, '\u212a')] = v;
          }
        }
        break;
      }
      case 'huge-string':
        root = setAt(root, path.length ? path : ['result'], 'x'.repeat(rng.pick([70_000, 300_000])));
        break;
    }
  }
  return { body: JSON.stringify(root) ?? 'undefined', mutation };
}

function textMutation(rng: Rng, text: string): { body: Buffer; mutation: string } {
  const b = Buffer.from(text, 'utf8');
  const mutation = rng.pick(['truncate', 'flip', 'insert', 'invalid-utf8', 'bom', 'trailing', 'duplicate-key', 'whitespace']);
  const at = () => rng.int(Math.max(1, b.length));
  switch (mutation) {
    case 'truncate':
      return { body: b.subarray(0, rng.int(b.length)), mutation };
    case 'flip': {
      const c = Buffer.from(b);
      for (let k = rng.range(1, 3); k > 0; k--) c[at()] = rng.int(256);
      return { body: c, mutation };
    }
    case 'insert': {
      const i = at();
      const ins = Buffer.from(rng.pick(['{', '}', '[', ']', ',', ':', '"', '\\', '\\u', 'null', '1e999', '-', 'true', '\u0000']));
      return { body: Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]), mutation };
    }
    case 'invalid-utf8': {
      const i = at();
      return { body: Buffer.concat([b.subarray(0, i), Buffer.from([rng.pick([0xc3, 0xff, 0xed, 0xf4, 0x80])]), b.subarray(i)]), mutation };
    }
    case 'bom':
      return { body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b]), mutation };
    case 'trailing':
      return { body: Buffer.concat([b, Buffer.from(rng.pick(['\n', ' x', '}', '{"result":{}}', '\u0000']))]), mutation };
    case 'duplicate-key':
      return { body: Buffer.from(text.replace('"result":', '"result":{"err":"dup"},"result":')), mutation };
    default:
      return { body: Buffer.from(` \n\t${text}\r\n `), mutation };
  }
}

function deep(rng: Rng): { body: string; where: string } {
  const n = rng.pick([100, 2_000, 20_000, 100_000]);
  const open = rng.bool() ? '['.repeat(n) : '{"a":'.repeat(n);
  const nested = open.startsWith('[') ? `${open}1${']'.repeat(n)}` : `${open}1${'}'.repeat(n)}`;
  const where = rng.pick(['body', 'result', 'result.err', 'result.field', 'queries', 'error', 'error.data', 'unknown-key']);
  const body = {
    body: nested,
    result: `{"result":${nested}}`,
    'result.err': `{"result":{"err":${nested}}}`,
    'result.field': `{"result":{"node_key":${nested}}}`,
    queries: `{"result":{"Queries":{"queries":{"q":${nested}}}}}`,
    error: `{"error":${nested}}`,
    'error.data': `{"error":{"code":-32000,"message":"x","data":${nested}}}`,
    'unknown-key': `{"result":{"zzz":${nested},"status":1}}`,
  }[where]!;
  return { body, where: `${where}@${n}` };
}

// ---- tests ------------------------------------------------------------------------------------

describe('fuzz: decodeResponse', () => {
  it('decodes every method’s valid response', () => {
    for (const method of DEVICE_METHODS) {
      expect(decodeChecked(method, Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 0, result: VALID[method] })))).toBe('ok');
    }
  });

  it(`survives ${RANDOM} random JSON values`, () => {
    const run = new FuzzRun('device.decode.random-json');
    for (let i = 0; i < RANDOM; i++) {
      const method = run.rng.pick(DEVICE_METHODS);
      const value = run.rng.bool(0.7)
        ? { jsonrpc: '2.0', id: i, [run.rng.pick(['result', 'error', 'Result'])]: randomJson(run.rng) }
        : randomJson(run.rng);
      const body = Buffer.from(JSON.stringify(value) ?? 'null');
      run.count(run.check({ method, body: body.toString() }, () => decodeChecked(method, body, run.rng.pick([200, 200, 400, 404]))));
    }
    expect(run.finish().failures).toBe(0);
  });

  it(
    `survives ${MUTATED} structurally and textually mutated valid responses`,
    () => {
      const run = new FuzzRun('device.decode.mutated');
      for (let i = 0; i < MUTATED; i++) {
        const method = run.rng.pick(DEVICE_METHODS);
        const s = structuralMutation(run.rng, method);
        let body: Buffer = Buffer.from(s.body);
        let mutation = s.mutation;
        if (run.rng.bool(0.35)) {
          const t = textMutation(run.rng, s.body);
          body = t.body;
          mutation += `+${t.mutation}`;
        }
        const outcome = run.check({ method, mutation, body: body.toString() }, () => {
          const out = decodeChecked(method, body);
          // Oracle: a non-null `err` (any case) or a non-null `error` can never decode successfully.
          if (out === 'ok') {
            const parsed = JSON.parse(body.toString('utf8')) as { error?: unknown; result?: Record<string, unknown> };
            const fold = (k: string) =>
              k
                .toLowerCase()
                .replace(/\u017f/g, 's')
                .replace(/\u212a/g, 'k');
            if (parsed.error !== undefined && parsed.error !== null) throw new Error('decoded despite a non-null "error"');
            for (const [k, v] of Object.entries(parsed.result ?? {}))
              if (fold(k) === 'err' && v !== null) throw new Error(`decoded despite non-null "${k}"`);
          }
          return out;
        });
        run.count(`${mutation}:${outcome}`);
      }
      expect(run.finish().failures).toBe(0);
    },
    timeoutFor(MUTATED),
  );

  it(
    `survives ${DEEP} deeply nested bodies (up to 100 000 levels)`,
    () => {
      const run = new FuzzRun('device.decode.deep');
      for (let i = 0; i < DEEP; i++) {
        const method = run.rng.pick(DEVICE_METHODS);
        const d = deep(run.rng);
        const outcome = run.check({ method, where: d.where, body: d.body }, () => decodeChecked(method, Buffer.from(d.body)));
        run.count(`${d.where.split('@')[0]}:${outcome}`);
      }
      expect(run.finish().failures).toBe(0);
    },
    timeoutFor(DEEP * 50),
  );

  it('rejects a non-null err, an error object and a missing result with a device error', () => {
    expect(decodeChecked('RequestConfig', Buffer.from('{"result":{"config":"{}","err":"boom"}}'))).toBe('E_DEVICE_RESPONSE');
    expect(decodeChecked('RequestConfig', Buffer.from('{"result":{"config":"{}","ERR":{}}}'))).toBe('E_DEVICE_RESPONSE');
    expect(decodeChecked('PublishLogs', Buffer.from('{"error":{"code":-32000,"message":"bad"}}'))).toBe('E_DEVICE_REJECTED');
    expect(decodeChecked('CheckHealth', Buffer.from('{"jsonrpc":"2.0","id":1}'))).toBe('E_DEVICE_RESPONSE');
    expect(decodeChecked('CheckHealth', Buffer.from('{"result":{"status":2147483648}}'))).toBe('E_DEVICE_RESPONSE');
    // Deep nesting in a place the decoder previews (it used to overflow the stack: RangeError).
    const nested = `${'['.repeat(50_000)}${']'.repeat(50_000)}`;
    expect(decodeChecked('RequestConfig', Buffer.from(`{"result":{"err":${nested}}}`))).toBe('E_DEVICE_RESPONSE');
    expect(decodeChecked('RequestConfig', Buffer.from(`{"result":${nested}}`))).toBe('E_DEVICE_RESPONSE');
  });
});

describe('fuzz: DeviceClient over real HTTP', () => {
  let server: http.Server;
  let client: DeviceClient;
  let next: { status: number; body: Buffer; mode: 'plain' | 'gzip' | 'gzip-garbage' | 'short' | 'chunked' } = {
    status: 200,
    body: Buffer.alloc(0),
    mode: 'plain',
  };

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const { status, body, mode } = next;
        if (mode === 'gzip' || mode === 'gzip-garbage') {
          const z = mode === 'gzip' ? zlib.gzipSync(body) : Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), body]);
          res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'Content-Length': z.length });
          res.end(z);
        } else if (mode === 'short') {
          // Declares more than it sends, then hangs up.
          res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length + 100 });
          res.write(body);
          res.socket?.destroy();
        } else if (mode === 'chunked') {
          res.writeHead(status, { 'Content-Type': 'application/json' });
          res.write(body.subarray(0, body.length >> 1));
          res.end(body.subarray(body.length >> 1));
        } else {
          res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
          res.end(body);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    client = new DeviceClient({ serverUrl: `http://127.0.0.1:${port}`, insecureTransport: true, maxAttempts: 1, timeoutMs: 10_000 });
  });

  afterAll(async () => {
    client?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  const call = (method: DeviceMethod): Promise<unknown> => {
    switch (method) {
      case 'RequestEnrollment':
        return client.requestEnrollment({ enrollSecret: 's', hostIdentifier: 'h', details: {} });
      case 'RequestConfig':
        return client.requestConfig('nk');
      case 'PublishLogs':
        return client.publishLogs('nk', 0, ['{}']);
      case 'RequestQueries':
        return client.requestQueries('nk');
      case 'PublishResults':
        return client.publishResults('nk', []);
      case 'CheckHealth':
        return client.checkHealth();
    }
  };

  it(
    `answers ${HTTP} fuzzed HTTP bodies with a result or a DeviceError`,
    async () => {
      const run = new FuzzRun('device.client.http');
      for (let i = 0; i < HTTP; i++) {
        const method = run.rng.pick(DEVICE_METHODS);
        const s = structuralMutation(run.rng, method);
        const body = run.rng.bool(0.4) ? textMutation(run.rng, s.body).body : Buffer.from(s.body);
        next = {
          status: run.rng.pick([200, 200, 200, 400, 404, 500, 503]),
          body,
          mode: run.rng.pick(['plain', 'plain', 'gzip', 'gzip-garbage', 'short', 'chunked'] as const),
        };
        const outcome = await run.checkAsync({ method, ...next, body: body.toString() }, async () => {
          try {
            const r = await call(method);
            // ADR 0013 (issue 15): a JSON-RPC result is the backend's answer on any HTTP status, 5xx included.
            assertWellTyped(method, r);
            return 'ok';
          } catch (err) {
            if (!(err instanceof DeviceError))
              throw new Error(`DeviceClient threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`, { cause: err });
            if (!['E_DEVICE_RESPONSE', 'E_DEVICE_REJECTED', 'E_DEVICE_TRANSPORT'].includes(err.code))
              throw new Error(`unexpected code ${err.code}: ${err.message}`);
            return err.code;
          }
        });
        run.count(`${next.mode}:${outcome}`);
      }
      expect(run.finish().failures).toBe(0);
      // The client is still usable.
      next = { status: 200, body: Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 0, result: VALID.CheckHealth })), mode: 'plain' };
      expect(await client.checkHealth()).toEqual({ status: 1, errorCode: '' });
    },
    timeoutFor(HTTP * 50),
  );
});
