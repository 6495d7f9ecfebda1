import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueClientCertificate, loadCertificateAuthority } from '../../src/control/certs.js';
import { ControlClient } from '../../src/control/client.js';
import { launcherApi } from '../../src/control/proto.js';
import type { ControlServer } from '../../src/control/server.js';
import { FakeTarget, makePki, startServer, type Pki, failure } from './fixtures.js';

interface HandshakeResult {
  ok: boolean;
  protocol?: string | null;
  cipher?: string;
  code?: string;
  message?: string;
}

/** A raw TLS handshake against the TCP listener, presenting the admin certificate. */
function handshake(pki: Pki, port: number, options: tls.ConnectionOptions): Promise<HandshakeResult> {
  const admin = pki.identity('admin');
  return new Promise((resolve) => {
    const socket = tls.connect(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: readFileSync(admin.ca),
        cert: readFileSync(admin.cert),
        key: readFileSync(admin.key),
        ALPNProtocols: ['h2'],
        ...options,
      },
      () => {
        resolve({ ok: true, protocol: socket.getProtocol(), cipher: socket.getCipher().name });
        socket.destroy();
      },
    );
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, code: err.code, message: err.message }));
  });
}

async function listWith(
  server: ControlServer,
  material: { ca: string | Buffer; cert: string | Buffer; key: string | Buffer },
): Promise<unknown> {
  const client = new ControlClient({ target: server.address, ...material });
  try {
    return await client.listInstances();
  } finally {
    client.close();
  }
}

describe('control API transport security', () => {
  let pki: Pki;
  let unixServer: ControlServer;
  let tcpServer: ControlServer;

  beforeAll(async () => {
    pki = await makePki();
    const target = new FakeTarget();
    unixServer = await startServer(pki, target);
    tcpServer = await startServer(pki, target, { listen: '127.0.0.1:0' });
  });

  afterAll(async () => {
    await unixServer?.close();
    await tcpServer?.close();
    pki?.cleanup();
  });

  it('serves a client with a valid certificate over the Unix socket and over TCP', async () => {
    expect(await listWith(unixServer, pki.identity('admin'))).toHaveLength(2);
    expect(tcpServer.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await listWith(tcpServer, pki.identity('admin'))).toHaveLength(2);
  });

  it('the Unix socket is not accessible to group or others (0600)', () => {
    const mode = statSync(unixServer.socketPath as string).mode & 0o777;
    expect(mode).toBe(0o600);
    expect(mode & 0o002).toBe(0);
  });

  it('prefers TLS 1.3 and accepts TLS 1.2 only with ECDHE + AEAD', async () => {
    const port = tcpServer.port as number;
    const best = await handshake(pki, port, {});
    expect(best).toMatchObject({ ok: true, protocol: 'TLSv1.3' });
    const v12 = await handshake(pki, port, { maxVersion: 'TLSv1.2' });
    expect(v12.ok).toBe(true);
    expect(v12.protocol).toBe('TLSv1.2');
    expect(v12.cipher).toMatch(/^ECDHE-.*(GCM|CHACHA20)/);
    const cbc = await handshake(pki, port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA' });
    expect(cbc.ok).toBe(false);
    expect(cbc.message).toMatch(/handshake failure/);
  });

  it('refuses a client offering only TLS 1.1 (the server answers with a protocol_version alert)', async () => {
    // SECLEVEL=0 lets our own OpenSSL offer TLS 1.1 at all, so the refusal is the server's.
    const res = await handshake(pki, tcpServer.port as number, {
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    expect(res.ok).toBe(false);
    expect(res.code).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });

  it('refuses a client without a certificate', async () => {
    const { Client } = launcherApi();
    const client = new Client(unixServer.address, grpc.credentials.createSsl(readFileSync(pki.certs.caCert)));
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) =>
        client.ListInstances({}, { deadline: Date.now() + 10_000 }, (e) => resolve(e)),
      );
      expect(err?.code).toBe(grpc.status.UNAVAILABLE);
      expect(err?.details).toMatch(/certificate required/);
    } finally {
      client.close();
    }
    // And at the TLS level, on the TCP port: with TLS 1.3 the client finishes
    // its side of the handshake, then the server's alert arrives instead of data.
    const raw = await new Promise<string>((resolve) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port: tcpServer.port as number,
        servername: 'localhost',
        ca: readFileSync(pki.certs.caCert),
        ALPNProtocols: ['h2'],
      });
      s.on('data', () => resolve('got data'));
      s.on('error', (e) => resolve(e.message));
    });
    expect(raw).toMatch(/certificate required/);
  });

  it('refuses a client certificate issued by another CA, and says so', async () => {
    const otherCa = await createCertificateAuthority();
    const foreign = await issueClientCertificate(otherCa, 'admin'); // same subject, wrong issuer
    const err = await failure(listWith(unixServer, { ca: pki.certs.caCert, cert: foreign.cert, key: foreign.key }));
    expect(err.failure).toBe('tls');
    expect(err.message).toMatch(/rejected the client certificate/);
    expect(err.message).toMatch(/not by the CA in --ca/);
  });

  it('refuses an expired client certificate, and says so', async () => {
    const ca = await loadCertificateAuthority(readFileSync(pki.certs.caCert, 'utf8'), readFileSync(join(pki.dir, 'ca.key'), 'utf8'));
    const expired = await issueClientCertificate(ca, 'admin', {
      notBefore: new Date('2020-01-01T00:00:00Z'),
      notAfter: new Date('2021-01-01T00:00:00Z'),
    });
    const err = await failure(listWith(unixServer, { ca: pki.certs.caCert, cert: expired.cert, key: expired.key }));
    expect(err.failure).toBe('tls');
    expect(err.message).toMatch(/expired on 2021-01-01/);
  });

  it('a client that does not trust the server certificate refuses it', async () => {
    const otherCa = await createCertificateAuthority();
    const err = await failure(listWith(unixServer, { ...pki.identity('admin'), ca: otherCa.cert }));
    expect(err.failure).toBe('tls');
  });
});
