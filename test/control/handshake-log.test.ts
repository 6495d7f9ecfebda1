// issue 13: rejected TLS handshakes on the control API were not logged (grpc-js hides them).
// Now the supervisor logs each at warn with the peer, the presented certificate subject (when the
// client sent one, trusted or not) and the reason, rate-limited with bounded memory.
// Real server, real TLS handshakes over TCP on 127.0.0.1 and over the Unix socket.
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueClientCertificate } from '../../src/control/certs.js';
import { HandshakeLog } from '../../src/control/handshake-log.js';
import type { ControlServer } from '../../src/control/server.js';
import { waitFor } from '../helpers/tmp.js';
import { FakeTarget, capturingLogger, clientFor, makePki, startServer, type Pki } from './fixtures.js';

type Where = { port: number } | { path: string };

/** One raw handshake; resolves when the connection is over, whatever happened. */
function handshake(pki: Pki, where: Where, options: tls.ConnectionOptions): Promise<void> {
  return new Promise((resolve) => {
    const target = 'port' in where ? { host: '127.0.0.1', port: where.port } : { path: where.path };
    const socket = tls.connect({
      ...target,
      servername: 'localhost',
      ca: readFileSync(pki.certs.caCert),
      ALPNProtocols: ['h2'],
      ...options,
    });
    socket.on('data', () => undefined);
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
  });
}

const REJECTED = 'control API TLS handshake rejected';

describe('rejected control API handshakes are logged (issue 13)', () => {
  let pki: Pki | undefined;
  let server: ControlServer | undefined;

  afterEach(async () => {
    await server?.close();
    pki?.cleanup();
    server = undefined;
    pki = undefined;
  });

  async function setUp() {
    const { logger, lines } = capturingLogger();
    pki = await makePki();
    server = await startServer(pki, new FakeTarget(), { listen: '127.0.0.1:0', logger });
    const rejected = () => lines.filter((l) => l.msg === REJECTED);
    return { pki, server, lines, rejected, where: { port: server.port as number } };
  }

  it('logs an untrusted certificate with its subject, a missing certificate and TLS 1.1, each with the reason', async () => {
    const { pki, server, rejected, where } = await setUp();
    const otherCa = await createCertificateAuthority();
    const intruder = await issueClientCertificate(otherCa, 'intruder');

    await handshake(pki, where, { cert: intruder.cert, key: intruder.key });
    const untrusted = await waitFor(() => rejected().find((l) => l.subject === 'CN=intruder'), 10_000, 'the untrusted-certificate line');
    expect(untrusted).toMatchObject({
      level: 40,
      component: 'control',
      peer: '127.0.0.1',
      reason: expect.stringMatching(/^client certificate rejected: /),
      code: expect.any(String),
    });

    await handshake(pki, where, {});
    const none = await waitFor(() => rejected().find((l) => l.reason === 'no client certificate'), 10_000, 'the no-certificate line');
    expect(none).toMatchObject({ subject: null, peer: '127.0.0.1', code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' });

    const admin = pki.identity('admin');
    await handshake(pki, where, {
      cert: readFileSync(admin.cert),
      key: readFileSync(admin.key),
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    const old = await waitFor(() => rejected().find((l) => l.reason === 'TLS version below 1.2'), 10_000, 'the TLS 1.1 line');
    expect(old).toMatchObject({ peer: '127.0.0.1', code: 'ERR_SSL_UNSUPPORTED_PROTOCOL' });

    // A good client is still served, and is not logged as rejected.
    const before = rejected().length;
    const client = clientFor(pki, server, 'admin');
    try {
      expect(await client.listInstances()).toHaveLength(2);
    } finally {
      client.close();
    }
    expect(rejected()).toHaveLength(before);
  });

  it('logs a foreign certificate on the Unix socket too', async () => {
    const { logger, lines } = capturingLogger();
    pki = await makePki();
    server = await startServer(pki, new FakeTarget(), { logger });
    const otherCa = await createCertificateAuthority();
    const foreign = await issueClientCertificate(otherCa, 'admin'); // the admin's name, another CA
    await handshake(pki, { path: server.socketPath as string }, { cert: foreign.cert, key: foreign.key });
    const line = await waitFor(() => lines.find((l) => l.msg === REJECTED), 10_000, 'the rejection line');
    expect(line).toMatchObject({ peer: 'unix socket', subject: 'CN=admin', reason: expect.stringMatching(/^client certificate rejected/) });
  });

  it('a flood of 200 bad handshakes yields a bounded number of lines, with the rest counted', async () => {
    const { pki, server, lines, rejected, where } = await setUp();
    for (let i = 0; i < 200; i++) await handshake(pki, where, {});
    await waitFor(() => rejected().length > 0, 10_000, 'the first line');
    await server.close(); // flushes the suppressed count
    const summary = lines.filter((l) => l.msg === 'control API TLS handshakes rejected (suppressed repeats)');
    expect(rejected()).toHaveLength(1);
    expect(summary).toHaveLength(1);
    expect(Number(rejected()[0]!.suppressed) + Number(summary[0]!.suppressed)).toBe(199);
  });

  it('tracks a bounded number of peers: 5,000 distinct ones cost at most maxKeys + 1 lines', () => {
    const { logger, lines } = capturingLogger();
    const log = new HandshakeLog(logger, { maxKeys: 50, intervalMs: 60_000 });
    for (let i = 0; i < 5_000; i++) log.rejected({ peer: `10.0.${i >> 8}.${i & 255}`, reason: 'no client certificate' });
    log.close();
    const first = lines.filter((l) => l.msg === REJECTED);
    expect(first).toHaveLength(51);
    expect(first.at(-1)).toMatchObject({ peer: '(other peers)' });
    const summary = lines.filter((l) => l.msg !== REJECTED);
    expect(summary).toEqual([expect.objectContaining({ peer: '(other peers)', suppressed: 5_000 - 51 })]);
  });
});
