/**
 * Check: the device server is reachable and its TLS certificate verifies
 * with the configured trust settings (root PEM, pins, insecure). One TLS
 * handshake (or, for http:// with insecure_transport, one TCP connection),
 * bounded by the doctor's timeout; no request is sent.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { buildTlsOptions } from '../device/tls.js';
import { parseServerUrl } from '../device/http-post.js';
import { errorMessage } from '../errors.js';
import { daysUntil, type CheckResult, type DoctorContext } from './types.js';

/** Certificates expiring sooner than this are a warning. */
export const EXPIRY_WARNING_DAYS = 30;

type Outcome<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Connect and wait for `ready`; the socket is destroyed afterwards. Never rejects. */
function probe<S extends Socket, T>(open: () => S, readyEvent: string, read: (s: S) => T, timeoutMs: number): Promise<Outcome<T>> {
  return new Promise((resolve) => {
    let settled = false;
    let socket: S | undefined;
    const finish = (o: Outcome<T>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ ok: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
    try {
      socket = open();
    } catch (err) {
      finish({ ok: false, reason: errorMessage(err) });
      return;
    }
    socket.once(readyEvent, () => {
      try {
        finish({ ok: true, value: read(socket!) });
      } catch (err) {
        finish({ ok: false, reason: errorMessage(err) });
      }
    });
    socket.once('error', (err: Error) => finish({ ok: false, reason: errorMessage(err) }));
    socket.once('close', () => finish({ ok: false, reason: 'connection closed during the handshake' }));
  });
}

interface Peer {
  protocol: string;
  subject: string;
  issuer: string;
  validTo: Date;
}

/** Subject fields may repeat (string[]). */
function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

export async function checkDeviceServer(ctx: DoctorContext): Promise<CheckResult> {
  const name = 'device server';
  const ds = ctx.config?.device_server;
  if (!ds) return { name, status: 'warn', detail: 'not checked: no valid configuration' };
  let url: URL;
  try {
    url = parseServerUrl(ds.url, ds.insecure_transport);
  } catch (err) {
    return { name, status: 'fail', detail: errorMessage(err) };
  }
  const host = hostOf(url);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const where = `${host}:${port}`;

  if (url.protocol === 'http:') {
    const r = await probe(
      () => netConnect({ host, port }),
      'connect',
      () => true,
      ctx.timeoutMs,
    );
    if (!r.ok) return { name, status: 'fail', detail: `${url.origin}: cannot connect to ${where}: ${r.reason}` };
    return {
      name,
      status: 'warn',
      detail: `${url.origin}: reachable, but plain HTTP (insecure_transport): nothing is encrypted or authenticated; only for a local device server`,
    };
  }

  let options;
  try {
    options = buildTlsOptions({ rootPemPath: ds.root_pem, certPins: ds.cert_pins, insecure: ds.insecure }, host);
  } catch (err) {
    return { name, status: 'fail', detail: errorMessage(err) };
  }
  const r = await probe<TLSSocket, Peer>(
    () => tlsConnect({ host, port, ...options }),
    'secureConnect',
    (s) => {
      const cert = s.getPeerCertificate();
      return {
        protocol: s.getProtocol() ?? 'TLS',
        subject: first(cert.subject?.CN) ?? '(no CN)',
        issuer: first(cert.issuer?.CN) ?? first(cert.issuer?.O) ?? '(unknown issuer)',
        validTo: new Date(cert.valid_to),
      };
    },
    ctx.timeoutMs,
  );
  const trust = ds.root_pem ? `roots from ${ds.root_pem}` : 'system roots';
  if (!r.ok)
    return {
      name,
      status: 'fail',
      detail: `${url.origin}: TLS handshake with ${where} failed (${trust}${ds.cert_pins.length ? ', pinned' : ''}): ${r.reason}`,
    };
  const peer = r.value;
  const summary = `${url.origin}: ${peer.protocol} handshake OK; certificate CN=${peer.subject} issued by ${peer.issuer}, valid until ${peer.validTo.toISOString().slice(0, 10)}`;
  if (ds.insecure)
    return { name, status: 'warn', detail: `${summary}; but certificate verification is OFF (insecure: true): never in production` };
  const left = daysUntil(peer.validTo, ctx.now);
  if (left < EXPIRY_WARNING_DAYS) return { name, status: 'warn', detail: `${summary}; it expires in ${left} days` };
  return {
    name,
    status: 'pass',
    detail: `${summary} (verified with ${trust}${ds.cert_pins.length ? ` and ${ds.cert_pins.length} pin(s)` : ''})`,
  };
}
