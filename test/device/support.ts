/**
 * Test support for the device client: a purpose-built HTTP(S) server that
 * records raw requests and answers with scripted responses, and TLS fixtures
 * generated with the openssl CLI.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { expect } from 'vitest';
import { DeviceError } from '../../src/device/index.js';

export interface CapturedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  /** Index of the TCP connection the request came on. */
  connection: number;
}

export type Responder = (req: CapturedRequest, res: ServerResponse) => void | Promise<void>;

export interface CaptureServer {
  url: string;
  port: number;
  requests: CapturedRequest[];
  connections: number;
  respond: Responder;
  close(): Promise<void>;
}

/** JSON-RPC success reply echoing the request id. */
export function rpcResult(result: unknown): Responder {
  return (req, res) => {
    const id = (JSON.parse(req.body.toString()) as { id: unknown }).id;
    const body = JSON.stringify({ jsonrpc: '2.0', id, result });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };
}

export function rawReply(status: number, body: string | Buffer, headers: Record<string, string> = {}): Responder {
  return (_req, res) => {
    const buf = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(buf.length), ...headers });
    res.end(buf);
  };
}

export async function startCaptureServer(
  respond: Responder,
  tls?: { cert: string; key: string; maxVersion?: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'; minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' },
): Promise<CaptureServer> {
  const sockets = new Set<Socket>();
  const state: CaptureServer = {
    url: '',
    port: 0,
    requests: [],
    connections: 0,
    respond,
    close: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const captured: CapturedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
        connection: (req.socket as Socket & { _n?: number })._n ?? -1,
      };
      state.requests.push(captured);
      void Promise.resolve(state.respond(captured, res)).catch(() => res.destroy());
    });
  };
  const server = tls
    ? https.createServer(
        {
          cert: tls.cert,
          key: tls.key,
          ...(tls.maxVersion ? { maxVersion: tls.maxVersion } : {}),
          ...(tls.minVersion ? { minVersion: tls.minVersion } : {}),
        },
        handler,
      )
    : http.createServer(handler);
  server.on(tls ? 'secureConnection' : 'connection', (s: Socket & { _n?: number }) => {
    s._n = state.connections++;
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.port = (server.address() as AddressInfo).port;
  state.url = `${tls ? 'https' : 'http'}://127.0.0.1:${state.port}`;
  return state;
}

export interface TlsFixture {
  caPem: string;
  caPath: string;
  otherCaPath: string;
  serverCert: string;
  serverKey: string;
  /** Hex SHA-256 of the SPKI of the server cert / CA / an unrelated key. */
  serverPin: string;
  caPin: string;
  otherPin: string;
  emptyPemPath: string;
  /** Signed by the CA, but only for DNS:elsewhere.example. */
  wrongNameCert: string;
  wrongNameKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

export function spkiPinOf(pem: string): string {
  const der = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

function makeCa(dir: string, name: string): void {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
}

/** A CA, a server cert for 127.0.0.1/localhost signed by it, and an unrelated CA. */
export function makeTlsFixture(dir: string): TlsFixture {
  makeCa(dir, 'ca');
  makeCa(dir, 'other');
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'srv.key',
      '-out',
      'srv.csr',
      '-subj',
      '/CN=localhost',
    ],
    dir,
  );
  writeFileSync(
    join(dir, 'ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'srv.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'srv.pem',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    ],
    dir,
  );
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'wrong.key',
      '-out',
      'wrong.csr',
      '-subj',
      '/CN=elsewhere.example',
    ],
    dir,
  );
  writeFileSync(join(dir, 'wrong.cnf'), 'subjectAltName=DNS:elsewhere.example\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'wrong.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'wrong.pem',
      '-days',
      '2',
      '-extfile',
      'wrong.cnf',
    ],
    dir,
  );
  writeFileSync(join(dir, 'empty.pem'), '# no certificates here\n');
  const caPem = readFileSync(join(dir, 'ca.pem'), 'utf8');
  const serverCert = readFileSync(join(dir, 'srv.pem'), 'utf8');
  return {
    caPem,
    caPath: join(dir, 'ca.pem'),
    otherCaPath: join(dir, 'other.pem'),
    serverCert,
    serverKey: readFileSync(join(dir, 'srv.key'), 'utf8'),
    serverPin: spkiPinOf(serverCert),
    caPin: spkiPinOf(caPem),
    otherPin: spkiPinOf(readFileSync(join(dir, 'other.pem'), 'utf8')),
    emptyPemPath: join(dir, 'empty.pem'),
    wrongNameCert: readFileSync(join(dir, 'wrong.pem'), 'utf8'),
    wrongNameKey: readFileSync(join(dir, 'wrong.key'), 'utf8'),
  };
}

/** Await a call that must fail with a DeviceError, and return that error. */
export async function rejection(p: Promise<unknown>): Promise<DeviceError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DeviceError);
    return err as DeviceError;
  }
  throw new Error('expected the call to fail');
}
