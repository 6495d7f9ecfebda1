/**
 * TLS settings of the control API, shared by server and client: TLS 1.2 at
 * least (1.3 is negotiated whenever both sides have it), and only ECDHE key
 * exchange with AEAD ciphers. The server always requires and verifies a
 * client certificate from our CA.
 *
 * grpc-js 1.14 has no ServerCredentials.createFromSecureContext, and
 * `createSsl` does not take minVersion/ciphers, but the public
 * `ServerCredentials` base class takes the options grpc-js passes verbatim to
 * `http2.createSecureServer`; `MutualTlsServerCredentials` uses that.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { LauncherError, errorMessage } from '../errors.js';

export const TLS_MIN_VERSION: tls.SecureVersion = 'TLSv1.2';

/** TLS 1.3 suites (all AEAD), then TLS 1.2 ECDHE + AEAD only. */
export const TLS_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256',
].join(':');

/** PEM contents, or a path to read them from. */
export type PemSource = Buffer | string;

export function readPem(source: PemSource, what: string): Buffer {
  if (Buffer.isBuffer(source)) return source;
  if (source.includes('-----BEGIN ')) return Buffer.from(source);
  try {
    return readFileSync(source);
  } catch (err) {
    throw new LauncherError('E_TLS', `cannot read ${what} from ${source}: ${errorMessage(err)}`, { cause: err });
  }
}

export interface TlsMaterial {
  ca: PemSource;
  cert: PemSource;
  key: PemSource;
}

export interface LoadedMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

function load(material: TlsMaterial): LoadedMaterial {
  const ca = readPem(material.ca, 'CA certificate');
  checkCa(ca, material.ca);
  return {
    ca,
    cert: readPem(material.cert, 'certificate'),
    key: readPem(material.key, 'private key'),
  };
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * createSecureContext accepts a CA that holds no usable certificate (empty,
 * garbage, a key): the server would start and refuse every client. Require at
 * least one certificate and every one to parse.
 */
function checkCa(ca: Buffer, source: PemSource): void {
  const where = Buffer.isBuffer(source) || source.includes('-----BEGIN ') ? '(inline PEM)' : source;
  const blocks = ca.toString('utf8').match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new LauncherError('E_TLS', `CA certificate ${where} contains no PEM certificate`);
  blocks.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new LauncherError('E_TLS', `CA certificate ${where}: certificate #${i + 1} is invalid: ${errorMessage(err)}`, { cause: err });
    }
  });
}

/** Fail early, with the file named, on PEM that Node cannot use. */
function checkContext(loaded: LoadedMaterial, what: string): void {
  try {
    tls.createSecureContext({ ...loaded, minVersion: TLS_MIN_VERSION, ciphers: TLS_CIPHERS });
  } catch (err) {
    throw new LauncherError('E_TLS', `invalid ${what} TLS material (certificate, key or CA): ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * The server's certificate, key and CA, read and checked (E_TLS naming the
 * file). The control server and the start-up checks (src/app) both call it.
 */
export function loadServerMaterial(material: TlsMaterial): LoadedMaterial {
  const loaded = load(material);
  checkContext(loaded, 'server');
  return loaded;
}

/** Handshakes that do not finish in this time are dropped (and logged). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Options of the control server's own `tls.Server` (server.ts): mutual TLS
 * with the suites above, HTTP/2 by ALPN, a client certificate from our CA
 * required (Node and OpenSSL refuse everything else, as grpc-js's own server
 * would).
 */
export function serverTlsOptions(loaded: LoadedMaterial): tls.TlsOptions {
  return {
    ...loaded,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: TLS_MIN_VERSION,
    ciphers: TLS_CIPHERS,
    honorCipherOrder: true,
    ALPNProtocols: ['h2'],
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  };
}

/** grpc-js credentials with the same settings, for servers that let grpc-js own TLS (tests, tools). */
export class MutualTlsServerCredentials extends grpc.ServerCredentials {
  constructor(material: TlsMaterial) {
    const loaded = loadServerMaterial(material);
    super(
      {
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: TLS_MIN_VERSION,
        ciphers: TLS_CIPHERS,
        honorCipherOrder: true,
      },
      { ...loaded, minVersion: TLS_MIN_VERSION, ciphers: TLS_CIPHERS },
    );
  }

  override _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** Channel credentials presenting our client certificate and trusting only our CA. */
export function clientCredentials(material: TlsMaterial): grpc.ChannelCredentials {
  const loaded = load(material);
  checkContext(loaded, 'client');
  const context = tls.createSecureContext({ ...loaded, minVersion: TLS_MIN_VERSION, ciphers: TLS_CIPHERS });
  return grpc.credentials.createFromSecureContext(context);
}
