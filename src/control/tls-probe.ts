/**
 * Why did a connection fail? With TLS 1.3 the server checks the client
 * certificate after the client already considers the handshake done, so
 * grpc-js often reports only "Failed to connect" when the server rejected
 * our certificate. This probe repeats the handshake with plain `tls.connect`
 * and waits for the server's first bytes: an HTTP/2 SETTINGS frame means TLS
 * is fine; a TLS alert (unknown ca, certificate expired, …) names the
 * problem.
 */
import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import { errorMessage } from '../errors.js';
import { readPem, TLS_CIPHERS, TLS_MIN_VERSION, type TlsMaterial } from './tls.js';

export type ProbeResult =
  | { ok: true }
  /** TLS-level failure: the message is OpenSSL's reason. */
  | { ok: false; tls: true; reason: string }
  /** Could not even connect (refused, no such socket, timeout). */
  | { ok: false; tls: false; reason: string };

function endpoint(target: string): { path: string } | { host: string; port: number } | undefined {
  if (target.startsWith('unix:')) return { path: target.replace(/^unix:(\/\/)?/, '') };
  const m = /^(?:dns:(?:\/\/[^/]*\/)?)?(\[[^\]]+\]|[^:]+):(\d+)$/.exec(target);
  if (!m) return undefined;
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/** OpenSSL error strings carry a long prefix and source location; keep the reason. */
function reasonOf(err: unknown): string {
  const msg = errorMessage(err);
  const m = /SSL routines:[^:]*:([^:]+)/.exec(msg);
  return (m ? m[1] : msg).trim();
}

export function probeTls(target: string, material: TlsMaterial, serverName = 'localhost', timeoutMs = 3_000): Promise<ProbeResult> {
  const where = endpoint(target);
  if (!where) return Promise.resolve({ ok: false, tls: false, reason: `cannot parse target ${target}` });
  return new Promise<ProbeResult>((resolve) => {
    let handshaken = false;
    let settled = false;
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const socket = tls.connect({
      ...where,
      servername: serverName,
      ca: readPem(material.ca, 'CA certificate'),
      cert: readPem(material.cert, 'certificate'),
      key: readPem(material.key, 'private key'),
      minVersion: TLS_MIN_VERSION,
      ciphers: TLS_CIPHERS,
      ALPNProtocols: ['h2'],
    });
    const timer = setTimeout(() => finish(handshaken ? { ok: true } : { ok: false, tls: false, reason: 'timed out' }), timeoutMs);
    socket.once('secureConnect', () => {
      handshaken = true;
    });
    socket.once('data', () => finish({ ok: true }));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const tlsError = handshaken || /SSL|TLS|CERT|alert/i.test(`${err.code ?? ''} ${err.message}`);
      finish({ ok: false, tls: tlsError, reason: tlsError ? reasonOf(err) : errorMessage(err) });
    });
    socket.once('close', () => {
      if (!handshaken) return finish({ ok: false, tls: false, reason: 'connection closed' });
      // Node servers drop a rejected client certificate without an alert: look for the likely reason locally.
      const local = clientCertificateDoubts(material);
      finish({
        ok: false,
        tls: true,
        reason: `the server closed the connection after the TLS handshake, i.e. it rejected the client certificate${local ? ` (${local})` : ''}`,
      });
    });
  });
}

/** What looks wrong with our client certificate from here (expiry, issuer), or undefined. */
export function clientCertificateDoubts(material: TlsMaterial, now = new Date()): string | undefined {
  try {
    const cert = new X509Certificate(readPem(material.cert, 'certificate'));
    if (now.getTime() > Date.parse(cert.validTo)) return `it expired on ${new Date(cert.validTo).toISOString()}`;
    if (now.getTime() < Date.parse(cert.validFrom)) return `it is not valid before ${new Date(cert.validFrom).toISOString()}`;
    const ca = new X509Certificate(readPem(material.ca, 'CA certificate'));
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
      const issuer = cert.issuer.replace(/\n/g, ', ');
      const caName = ca.subject.replace(/\n/g, ', ');
      return issuer === caName
        ? `it was issued by a different CA that has the same name as the CA in --ca ("${caName}")`
        : `it was issued by "${issuer}", not by the CA in --ca ("${caName}")`;
    }
  } catch (err) {
    return `cannot inspect it: ${errorMessage(err)}`;
  }
  return undefined;
}
