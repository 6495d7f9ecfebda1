// Issue 9 (bad input): certificate files. For the control server (CA, certificate, key) and the
// device client's root PEM, a missing, empty, directory, garbage, truncated or mismatched file is
// refused when the server or client is created, with a clear E_TLS error naming what is wrong —
// not accepted and then failing every handshake later, and never a crash. The control server
// leaves no socket behind when it refuses to start. Valid material still works.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LauncherError } from '../../src/errors.js';
import { initCertificates, type CertsInitResult } from '../../src/control/certs-init.js';
import { ControlClient } from '../../src/control/client.js';
import { startControlServer } from '../../src/control/server.js';
import type { ControlTarget } from '../../src/control/target.js';
import { DeviceClient } from '../../src/device/index.js';
import { shortTempDir } from '../helpers/tmp.js';

let tmp: ReturnType<typeof shortTempDir>;
let certs: CertsInitResult;
let roles: Record<string, string>;
const bad: Record<string, string> = {};

/** A target no call reaches in these tests except version(). */
const target: ControlTarget = {
  version: () => ({ serverVersion: '0.0.0-test', apiVersion: '1', features: [] }),
  health: () => ({ healthy: true, instances: [] }),
  listInstances: () => [],
  getInstance: () => undefined,
  addRegistration: () => Promise.reject(new Error('not in this test')),
  removeRegistration: () => Promise.reject(new Error('not in this test')),
  restartInstance: () => Promise.reject(new Error('not in this test')),
  query: () => Promise.reject(new Error('not in this test')),
  history: () => [],
  output: () => undefined,
  listQuarantine: () => [],
  releaseQuarantine: () => Promise.reject(new Error('not in this test')),
};

beforeAll(async () => {
  tmp = shortTempDir('ce');
  certs = await initCertificates({ dir: join(tmp.dir, 'pki'), tenants: ['acme'] });
  roles = JSON.parse(readFileSync(certs.rolesFile, 'utf8')) as Record<string, string>;
  const f = (name: string, content: string) => {
    const p = join(tmp.dir, name);
    writeFileSync(p, content);
    return p;
  };
  const caPem = readFileSync(certs.caCert, 'utf8');
  const keyPem = readFileSync(certs.serverKey, 'utf8');
  bad.missing = join(tmp.dir, 'missing.pem');
  bad.empty = f('empty.pem', '');
  bad.whitespace = f('ws.pem', '\n \n');
  bad.garbage = f('garbage.pem', 'this is not a certificate\n');
  bad.binary = f('binary.pem', '\u0000\u0001\u00ff'.repeat(100));
  bad.badBase64 = f('badb64.pem', '-----BEGIN CERTIFICATE-----\n!!!!not base64!!!!\n-----END CERTIFICATE-----\n');
  bad.truncated = f('trunc.pem', caPem.slice(0, Math.floor(caPem.length / 2)));
  bad.truncatedBody = f('truncbody.pem', `${caPem.split('\n').slice(0, 4).join('\n')}\n-----END CERTIFICATE-----\n`);
  bad.keyAsCert = f('keyascert.pem', keyPem);
  bad.dir = join(tmp.dir, 'dir.pem');
  mkdirSync(bad.dir);
  bad.underFile = join(certs.caCert, 'x.pem');
});

afterAll(() => tmp?.cleanup());

async function expectStartRefused(material: { ca: string; cert: string; key: string }, what: RegExp): Promise<LauncherError> {
  const sock = join(tmp.dir, 'c.sock');
  const err = await startControlServer({ target, listen: `unix://${sock}`, roles, ...material }).then(
    async (server) => {
      await server.close();
      return new Error('control server started');
    },
    (e: unknown) => e,
  );
  expect(err, (err as Error).message).toBeInstanceOf(LauncherError);
  expect(['E_TLS', 'E_CONFIG']).toContain((err as LauncherError).code);
  expect((err as Error).message).toMatch(what);
  expect(existsSync(sock), 'no socket left behind').toBe(false);
  return err as LauncherError;
}

describe('control server certificate files', () => {
  it('starts with valid material and answers a client', async () => {
    const sock = join(tmp.dir, 'ok.sock');
    const server = await startControlServer({
      target,
      listen: `unix://${sock}`,
      roles,
      ca: certs.caCert,
      cert: certs.serverCert,
      key: certs.serverKey,
    });
    const admin = certs.identities.find((i) => i.role === 'admin')!;
    const client = new ControlClient({ target: server.address, ca: certs.caCert, cert: admin.cert, key: admin.key });
    try {
      expect((await client.version()).serverVersion).toBe('0.0.0-test');
    } finally {
      client.close();
      await server.close();
    }
  });

  it.each([
    'missing',
    'empty',
    'whitespace',
    'garbage',
    'binary',
    'badBase64',
    'truncated',
    'truncatedBody',
    'keyAsCert',
    'dir',
    'underFile',
  ])('refuses a %s CA file at start', async (kind) => {
    await expectStartRefused({ ca: bad[kind]!, cert: certs.serverCert, key: certs.serverKey }, /CA|ca|certificate/);
  });

  it.each(['missing', 'empty', 'whitespace', 'garbage', 'binary', 'badBase64', 'truncated', 'keyAsCert', 'dir', 'underFile'])(
    'refuses a %s server certificate file at start',
    async (kind) => {
      await expectStartRefused({ ca: certs.caCert, cert: bad[kind]!, key: certs.serverKey }, /certificate|cert/);
    },
  );

  it.each(['missing', 'empty', 'whitespace', 'garbage', 'binary', 'truncated', 'dir', 'underFile'])(
    'refuses a %s private key file at start',
    async (kind) => {
      await expectStartRefused({ ca: certs.caCert, cert: certs.serverCert, key: bad[kind]! }, /key/);
    },
  );

  it('refuses a key that does not match the certificate', async () => {
    const other = certs.identities[0]!;
    await expectStartRefused({ ca: certs.caCert, cert: certs.serverCert, key: other.key }, /key/);
  });
});

describe('device client root PEM', () => {
  const make = (rootPemPath: string) => new DeviceClient({ serverUrl: 'https://device.example', rootPemPath });

  it('accepts a valid root PEM', () => {
    make(certs.caCert).close();
  });

  it.each([
    'missing',
    'empty',
    'whitespace',
    'garbage',
    'binary',
    'badBase64',
    'truncated',
    'truncatedBody',
    'keyAsCert',
    'dir',
    'underFile',
  ])('refuses a %s root PEM when the client is created', (kind) => {
    let err: unknown;
    try {
      make(bad[kind]!).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LauncherError);
    expect((err as LauncherError).code).toBe('E_TLS');
    expect((err as Error).message).toContain(bad[kind]!);
  });
});
