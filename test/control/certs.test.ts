import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCertsCommand } from '../../src/cli/certs.js';
import { resolveClientConfig } from '../../src/control/client-config.js';
import { shortTempDir } from '../helpers/tmp.js';

async function certs(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let code = -1;
  let out = '';
  let err = '';
  const cmd = buildCertsCommand({ stdout: (t) => (out += t), stderr: (t) => (err += t), exit: (c) => (code = c) });
  await cmd.parseAsync(argv, { from: 'user' });
  return { code, out, err };
}

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('launcher certs init / issue', () => {
  const tmp = shortTempDir('crt');
  const dir = join(tmp.dir, 'tls');
  let first: { code: number; out: string; err: string };

  beforeAll(async () => {
    first = await certs(['init', '--dir', dir, '--tenant', 'acme', '--tenant', 'globex']);
  });
  afterAll(() => tmp.cleanup());

  it('creates a CA, a server certificate and admin + tenant client certificates', () => {
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.out).toContain('CN=tenant-acme');
    expect(JSON.parse(readFileSync(join(dir, 'roles.json'), 'utf8'))).toEqual({
      'CN=admin': 'admin',
      'CN=tenant-acme': 'tenant:acme',
      'CN=tenant-globex': 'tenant:globex',
    });
  });

  it('writes private keys 0600 (PKCS#8, ECDSA P-256), certificates 0644, the directory 0700', () => {
    expect(mode(dir)).toBe(0o700);
    for (const name of ['ca', 'server', 'admin', 'tenant-acme', 'tenant-globex']) {
      expect(mode(join(dir, `${name}.key`))).toBe(0o600);
      expect(mode(join(dir, `${name}.pem`))).toBe(0o644);
      const pem = readFileSync(join(dir, `${name}.key`), 'utf8');
      expect(pem.startsWith('-----BEGIN PRIVATE KEY-----')).toBe(true);
      const key = createPrivateKey(pem);
      expect(key.asymmetricKeyType).toBe('ec');
      expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    }
  });

  it('issues a server certificate for localhost (the unix: authority), 127.0.0.1 and ::1, signed by the CA', () => {
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
    const server = new X509Certificate(readFileSync(join(dir, 'server.pem')));
    expect(ca.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // EKU serverAuth
    const client = new X509Certificate(readFileSync(join(dir, 'tenant-acme.pem')));
    expect(client.subject).toBe('CN=tenant-acme');
    expect(client.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // EKU clientAuth
    expect(client.verify(ca.publicKey)).toBe(true);
  });

  it('writes one client config per identity, with paths relative to it', () => {
    expect(JSON.parse(readFileSync(join(dir, 'ctl.json'), 'utf8'))).toEqual({
      target: `unix://${dir}/control.sock`,
      ca: 'ca.pem',
      cert: 'admin.pem',
      key: 'admin.key',
    });
    const cfg = resolveClientConfig({ config: join(dir, 'ctl-tenant-acme.json') }, {}, '/');
    expect(cfg).toEqual({
      target: `unix://${dir}/control.sock`,
      ca: join(dir, 'ca.pem'),
      cert: join(dir, 'tenant-acme.pem'),
      key: join(dir, 'tenant-acme.key'),
    });
  });

  it('refuses to replace an existing CA without --force', async () => {
    const again = await certs(['init', '--dir', dir]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already has a CA.*--force/);
  });

  it('issues more tenants with the existing CA and updates roles.json', async () => {
    const res = await certs(['issue', '--dir', dir, '--tenant', 'initech']);
    expect(res.code).toBe(0);
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
    expect(new X509Certificate(readFileSync(join(dir, 'tenant-initech.pem'))).verify(ca.publicKey)).toBe(true);
    expect(mode(join(dir, 'tenant-initech.key'))).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, 'roles.json'), 'utf8'))).toMatchObject({
      'CN=tenant-initech': 'tenant:initech',
      'CN=admin': 'admin',
    });
  });

  it('rejects a tenant id that is not a registration id', async () => {
    const res = await certs(['issue', '--dir', dir, '--tenant', 'Not Valid']);
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/not a valid registration id/);
  });

  it('--force replaces the CA and starts a fresh roles.json', async () => {
    const before = readFileSync(join(dir, 'ca.pem'), 'utf8');
    const res = await certs(['init', '--dir', dir, '--force', '--tenant', 'acme']);
    expect(res.code).toBe(0);
    expect(readFileSync(join(dir, 'ca.pem'), 'utf8')).not.toBe(before);
    expect(Object.keys(JSON.parse(readFileSync(join(dir, 'roles.json'), 'utf8'))).sort()).toEqual(['CN=admin', 'CN=tenant-acme']);
  });
});
