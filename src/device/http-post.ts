/**
 * One HTTP exchange as launcher's Go client does it (docs/protocol/device.md#transport):
 * `POST /`, body with Content-Length (never chunked), `Connection: close`,
 * no keep-alive agent, no proxy. Bounded in time (the whole exchange) and in
 * response size (the connection is destroyed past the limit). gzip responses
 * are inflated, also bounded, because the request advertises gzip as Go does.
 */
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import type { Readable } from 'node:stream';
import { LauncherError, errorMessage } from '../errors.js';
import { CertPinError, type TlsRequestOptions } from './tls.js';

export interface PostTarget {
  url: URL;
  /** Present for https. */
  tls: TlsRequestOptions | undefined;
  userAgent: string;
}

export interface PostLimits {
  timeoutMs: number;
  maxResponseBytes: number;
  signal?: AbortSignal | undefined;
}

export interface PostResult {
  status: number;
  body: Buffer;
  /** Bytes read off the wire (before inflating). */
  wireBytes: number;
}

export type PostFailureKind = 'network' | 'timeout' | 'tls' | 'too-large' | 'aborted' | 'bad-encoding';

export class PostError extends Error {
  readonly kind: PostFailureKind;
  constructor(kind: PostFailureKind, message: string, cause?: unknown) {
    super(message, { cause });
    this.kind = kind;
  }
}

const TLS_ERROR_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
  'EPROTO',
]);

function isTlsError(err: unknown): boolean {
  if (err instanceof CertPinError) return true;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (TLS_ERROR_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'));
}

export function postJson(target: PostTarget, body: Buffer, limits: PostLimits): Promise<PostResult> {
  return new Promise<PostResult>((resolve, reject) => {
    const { url } = target;
    const isHttps = url.protocol === 'https:';
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const where = `${url.protocol}//${url.host}/`;
    let settled = false;
    let secured = false;
    let timer: NodeJS.Timeout | undefined;

    const finish = (err: PostError | undefined, result?: PostResult) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      limits.signal?.removeEventListener('abort', onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else {
        resolve(result!);
      }
    };
    const onAbort = () => finish(new PostError('aborted', `POST ${where} aborted`));

    const options: https.RequestOptions = {
      hostname,
      port: url.port || (isHttps ? 443 : 80),
      method: 'POST',
      path: '/',
      agent: false,
      headers: {
        Host: url.host,
        'User-Agent': target.userAgent,
        'Content-Length': String(body.length),
        'Content-Type': 'application/json; charset=utf-8',
        'Accept-Encoding': 'gzip',
        Connection: 'close',
      },
      ...(isHttps ? target.tls : {}),
    };
    const req = (isHttps ? https : http).request(options);

    req.on('socket', (socket) => {
      socket.once('secureConnect', () => (secured = true));
    });
    req.on('error', (err) => {
      if (settled) return;
      if (isHttps && !secured && isTlsError(err)) {
        finish(new PostError('tls', `TLS handshake with ${where} failed: ${errorMessage(err)}`, err));
      } else {
        finish(new PostError('network', `POST ${where} failed: ${errorMessage(err)}`, err));
      }
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > limits.maxResponseBytes) {
        finish(
          new PostError('too-large', `response from ${where} declares ${declared} bytes, over the ${limits.maxResponseBytes}-byte limit`),
        );
        res.destroy();
        return;
      }
      let wireBytes = 0;
      res.on('data', (chunk: Buffer) => (wireBytes += chunk.length));
      const encoding = String(res.headers['content-encoding'] ?? '').toLowerCase();
      let stream: Readable = res;
      if (encoding === 'gzip') {
        const gunzip = zlib.createGunzip();
        res.pipe(gunzip);
        gunzip.on('error', (err) => {
          finish(new PostError('bad-encoding', `response from ${where}: bad gzip body: ${errorMessage(err)}`, err));
          res.destroy();
        });
        stream = gunzip;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limits.maxResponseBytes) {
          finish(new PostError('too-large', `response from ${where} exceeds the ${limits.maxResponseBytes}-byte limit`));
          res.destroy();
          stream.destroy();
          return;
        }
        chunks.push(chunk);
      });
      stream.on('end', () => finish(undefined, { status, body: Buffer.concat(chunks, size), wireBytes }));
      res.on('error', (err) => finish(new PostError('network', `reading response from ${where} failed: ${errorMessage(err)}`, err)));
      res.on('aborted', () => finish(new PostError('network', `response from ${where} was cut off`)));
    });

    if (limits.signal?.aborted) {
      onAbort();
      return;
    }
    limits.signal?.addEventListener('abort', onAbort, { once: true });
    timer = setTimeout(
      () => finish(new PostError('timeout', `POST ${where} got no complete response within ${limits.timeoutMs} ms`)),
      limits.timeoutMs,
    );
    req.end(body);
  });
}

export function isPostError(err: unknown): err is PostError {
  return err instanceof PostError;
}

/** Parse and check the configured server URL (scheme + host[:port], no path). */
export function parseServerUrl(raw: string, insecureTransport: boolean): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `${insecureTransport ? 'http' : 'https'}://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch (err) {
    throw new LauncherError('E_CONFIG', `device server URL ${JSON.stringify(raw)} is not a URL: ${errorMessage(err)}`, { cause: err });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new LauncherError('E_CONFIG', `device server URL ${JSON.stringify(raw)}: scheme must be https (or http with insecureTransport)`);
  }
  if (url.protocol === 'http:' && !insecureTransport) {
    throw new LauncherError('E_CONFIG', `device server URL ${JSON.stringify(raw)} is plain http; set insecureTransport to allow it`);
  }
  if (url.protocol === 'https:' && insecureTransport) {
    throw new LauncherError('E_CONFIG', `device server URL ${JSON.stringify(raw)} is https but insecureTransport is set`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
    throw new LauncherError(
      'E_CONFIG',
      `device server URL ${JSON.stringify(raw)} must be scheme://host[:port] only (requests always go to POST /)`,
    );
  }
  return url;
}
