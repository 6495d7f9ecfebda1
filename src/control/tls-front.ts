/**
 * The control API's TLS listener (issue 13, ADR 0011). grpc-js terminates
 * TLS inside an http2 server it never exposes, so a rejected handshake is
 * invisible (only its trace logger sees it). We terminate TLS ourselves with
 * node's `tls.Server` (same material, versions and suites: tls.ts) and hand
 * each verified socket to grpc-js through its public connection injector;
 * grpc-js then serves HTTP/2 on it and reads the peer certificate from it as
 * before (`getAuthContext`).
 *
 * Every refusal reaches `tlsClientError`: no certificate, TLS < 1.2, no
 * shared suite, a handshake timeout, and a certificate that does not verify
 * (Node destroys that socket right after the handshake, with
 * `authorizationError` set). The last is the one whose subject matters, and
 * Node drops the certificate with the socket; `keylog` is the one server
 * event that hands us the socket during the handshake, so we use it only to
 * register a 'secure' listener that records the presented subject. The key
 * lines themselves are ignored: never kept, never logged.
 */
import type { Socket } from 'node:net';
import * as tls from 'node:tls';
import type { Logger } from '../log/logger.js';
import { HandshakeLog, printable, type HandshakeRejection } from './handshake-log.js';
import { serverTlsOptions, type LoadedMaterial } from './tls.js';

export interface TlsFront {
  readonly server: tls.Server;
  /** Stop listening and logging (flushes suppressed counts); destroy every connection still open (call after grpc-js shut down). */
  close(): void;
}

/** Friendlier names for the usual refusals; anything else is logged by its code. */
const REASONS: Record<string, string> = {
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'no client certificate',
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'TLS version below 1.2',
  ERR_SSL_NO_SHARED_CIPHER: 'no shared cipher suite',
  ERR_SSL_NO_APPLICATION_PROTOCOL: 'no shared application protocol (ALPN h2)',
  ERR_SSL_WRONG_VERSION_NUMBER: 'not a TLS client',
  ERR_SSL_HTTP_REQUEST: 'plain HTTP, not TLS',
  ERR_TLS_HANDSHAKE_TIMEOUT: 'handshake timed out',
};

function peerOf(socket: tls.TLSSocket): string {
  return socket.remoteAddress ?? 'unix socket';
}

function subjectOf(socket: tls.TLSSocket): string | undefined {
  try {
    const subject = socket.getPeerX509Certificate()?.subject;
    return subject ? printable(subject) : undefined;
  } catch {
    return undefined;
  }
}

export function startTlsFront(loaded: LoadedMaterial, logger: Logger, onSecure: (socket: tls.TLSSocket) => void): TlsFront {
  const server = tls.createServer(serverTlsOptions(loaded));
  const log = new HandshakeLog(logger);
  /** Per socket in its handshake: the peer (gone once Node destroys the socket) and the subject it presented. */
  const presented = new WeakMap<tls.TLSSocket, { peer: string; subject?: string }>();
  const connections = new Set<Socket>();

  server.on('connection', (raw: Socket) => {
    connections.add(raw);
    raw.once('close', () => connections.delete(raw));
  });

  server.on('keylog', (_line: Buffer, socket: tls.TLSSocket) => {
    if (presented.has(socket)) return;
    const seen: { peer: string; subject?: string } = { peer: peerOf(socket) };
    presented.set(socket, seen);
    // Runs before Node's own check of the certificate, which may destroy the socket.
    socket.prependOnceListener('secure', () => {
      const subject = subjectOf(socket);
      if (subject) seen.subject = subject;
    });
  });

  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    const verify = socket.authorizationError;
    const code = typeof verify === 'string' && verify !== '' ? verify : err.code;
    const seen = presented.get(socket);
    const rejection: HandshakeRejection = {
      peer: seen?.peer ?? peerOf(socket),
      reason: verify
        ? `client certificate rejected: ${String(verify)}`
        : (REASONS[err.code ?? ''] ?? printable(err.message.split('\n')[0] ?? 'handshake failed')),
    };
    if (code) rejection.code = String(code);
    if (seen?.subject) rejection.subject = seen.subject;
    log.rejected(rejection);
  });

  server.on('secureConnection', (socket: tls.TLSSocket) => {
    // Errors after the handshake belong to the HTTP/2 session that ends with them (as in grpc-js).
    socket.on('error', () => undefined);
    onSecure(socket);
  });

  return {
    server,
    close(): void {
      server.close();
      for (const raw of connections) raw.destroy();
      log.close();
    },
  };
}
