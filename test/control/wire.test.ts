import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlClient } from '../../src/control/client.js';
import type { GetInstanceResponse__Output } from '../../src/control/gen/launcher/v1/GetInstanceResponse.js';
import { launcherApi } from '../../src/control/proto.js';
import type { ControlServer } from '../../src/control/server.js';
import { clientCredentials } from '../../src/control/tls.js';
import { FakeTarget, clientFor, makePki, startServer, type Pki, failure } from './fixtures.js';

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

function field(num: number, wire: 0 | 2, value: number | string): number[] {
  const tag = varint((num << 3) | wire);
  if (wire === 0) return [...tag, ...varint(value as number)];
  const bytes = [...Buffer.from(value as string)];
  return [...tag, ...varint(bytes.length), ...bytes];
}

describe('control API wire compatibility and request validation', () => {
  let pki: Pki;
  let server: ControlServer;
  let target: FakeTarget;
  let admin: ControlClient;

  beforeAll(async () => {
    pki = await makePki();
    target = new FakeTarget();
    server = await startServer(pki, target);
    admin = clientFor(pki, server, 'admin');
  });

  afterAll(async () => {
    admin?.close();
    await server?.close();
    pki?.cleanup();
  });

  it('accepts a request carrying fields it does not know (as a newer client would send)', async () => {
    // GetInstanceRequest{id: "acme"} plus fields 99 (varint) and 100 (bytes) from a future schema.
    const body = Buffer.from([...field(1, 2, 'acme'), ...field(99, 0, 7), ...field(100, 2, 'future')]);
    const method = launcherApi().service.GetInstance;
    const raw = new grpc.Client(server.address, clientCredentials(pki.identity('admin')));
    try {
      const res = await new Promise<GetInstanceResponse__Output>((resolve, reject) => {
        raw.makeUnaryRequest(
          method.path,
          () => body,
          (buf: Buffer) => method.responseDeserialize(buf),
          {},
          new grpc.Metadata(),
          { deadline: Date.now() + 10_000 },
          (err, value) => (err ? reject(err) : resolve(value as GetInstanceResponse__Output)),
        );
      });
      expect(res.instance?.id).toBe('acme');
      expect(res.instance?.state).toBe('running');
    } finally {
      raw.close();
    }
  });

  it('a response with unknown fields (from a newer server) decodes', () => {
    const method = launcherApi().service.GetVersion;
    const known = method.responseSerialize({ server_version: '9.9.9', api_version: 'v1', features: ['query'] });
    const decoded = method.responseDeserialize(Buffer.concat([known, Buffer.from([...field(42, 2, 'x'), ...field(43, 0, 300)])]));
    expect(decoded).toMatchObject({ server_version: '9.9.9', features: ['query'] });
  });

  it.each([
    ['a registration id with capitals', (c: ControlClient) => c.getInstance('Acme'), /not a valid registration id/],
    ['an over-long registration id', (c: ControlClient) => c.getInstance('a'.repeat(64)), /not a valid registration id/],
    ['empty SQL', (c: ControlClient) => c.query('acme', '   '), /sql must not be empty/],
    ['SQL over 64 KiB', (c: ControlClient) => c.query('acme', `select '${'x'.repeat(70_000)}'`), /maximum is 65536/],
    ['a query timeout over 5 minutes', (c: ControlClient) => c.query('acme', 'select 1', 300_001), /timeout_ms 300001 is out of range/],
    ['a history limit over 1000', (c: ControlClient) => c.history('acme', 1_001), /limit 1001 is out of range/],
    [
      'both secret and secret path',
      (c: ControlClient) => c.addRegistration({ id: 'x1', enrollSecret: 's', enrollSecretPath: '/s' }),
      /exactly one of/,
    ],
    ['no secret at all', (c: ControlClient) => c.addRegistration({ id: 'x1' }), /exactly one of/],
    [
      'a relative secret path',
      (c: ControlClient) => c.addRegistration({ id: 'x1', enrollSecretPath: 'secret.txt' }),
      /must be an absolute path/,
    ],
    [
      'a malformed osquery flag',
      (c: ControlClient) => c.addRegistration({ id: 'x1', enrollSecret: 's', osqueryFlags: ['verbose'] }),
      /--name or --name=value/,
    ],
    [
      'a memory limit out of range',
      (c: ControlClient) => c.addRegistration({ id: 'x1', enrollSecret: 's', limits: { memory_mb: 1 } }),
      /limits.memory_mb: must be an integer in 100..100000 \(MB\), got 1/,
    ],
    ['an invalid id to add', (c: ControlClient) => c.addRegistration({ id: '-x', enrollSecret: 's' }), /not a valid registration id/],
  ])('rejects %s with INVALID_ARGUMENT', async (_what, call, message) => {
    const err = await failure(call(admin));
    expect(err.failure).toBe('invalid-argument');
    expect(err.grpcStatus).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.message).toMatch(message);
    expect(target.added).toEqual([]);
  });

  it('passes defaults for unset timeout and limit to the target', async () => {
    await admin.query('acme', 'select 1');
    expect(target.queries.at(-1)).toEqual({ id: 'acme', sql: 'select 1', timeoutMs: 30_000 });
    await admin.query('acme', 'select 2', 1_500);
    expect(target.queries.at(-1)?.timeoutMs).toBe(1_500);
    expect(await admin.history('acme', 1)).toHaveLength(1);
  });

  it('maps target errors to statuses; unexpected errors → INTERNAL without details', async () => {
    const { LauncherError } = await import('../../src/errors.js');
    target.queryError = new LauncherError('E_TIMEOUT', 'query on acme timed out after 10 ms');
    const timeout = await failure(admin.query('acme', 'select 1', 10));
    expect(timeout.failure).toBe('timeout');
    expect(timeout.message).toContain('timed out after 10 ms');
    target.queryError = new LauncherError('E_EXTENSION_STATUS', 'query failed with code 1: no such table: nope');
    const sqlError = await failure(admin.query('acme', 'select * from nope'));
    expect(sqlError.failure).toBe('invalid-argument');
    expect(sqlError.message).toContain('no such table: nope');
    target.queryError = new LauncherError('E_CLOSED', 'osqueryd of acme is restarting');
    const busy = await failure(admin.query('acme', 'select 1'));
    expect(busy.failure).toBe('unavailable');
    expect(busy.message).toContain('temporarily unavailable: osqueryd of acme is restarting');
    target.queryError = new Error('secret internal detail');
    const internal = await failure(admin.query('acme', 'select 1'));
    expect(internal.grpcStatus).toBe(grpc.status.INTERNAL);
    expect(internal.message).not.toContain('secret internal detail');
    target.queryError = undefined;
  });
});
