/**
 * Check: the control API's certificates (control.ca / cert / key) are
 * present and readable, the key belongs to the server certificate, the CA
 * issued (and signed) it, and neither the server certificate nor the CA has
 * expired or expires within 30 days.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { errorMessage } from '../errors.js';
import { EXPIRY_WARNING_DAYS } from './device-server.js';
import { daysUntil, Findings, type CheckResult, type DoctorContext } from './types.js';

const day = (d: Date): string => d.toISOString().slice(0, 10);
const cn = (subject: string): string => /(?:^|\n)CN=([^\n]*)/.exec(subject)?.[1] ?? subject.replace(/\n/g, ', ');

function validity(f: Findings, what: string, cert: X509Certificate, now: Date): void {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (now < from) {
    f.fail(`${what} is not valid before ${from.toISOString()}`);
    return;
  }
  const left = daysUntil(to, now);
  if (now > to) f.fail(`${what} expired on ${day(to)}`);
  else if (left < EXPIRY_WARNING_DAYS) f.warn(`${what} expires in ${left} days (${day(to)}); renew it`);
  else f.pass(`${what} valid until ${day(to)} (${left} days)`);
}

export async function checkControlCertificates(ctx: DoctorContext): Promise<CheckResult> {
  const f = new Findings('control certificates');
  const control = ctx.config?.control;
  if (!control) return f.warn('not checked: no valid configuration').result();
  if (!control.enabled) return f.pass('control API disabled (control.enabled: false)').result();
  if (!control.ca || !control.cert || !control.key) {
    const unset = (['ca', 'cert', 'key'] as const).filter((k) => !control[k]).map((k) => `control.${k}`);
    return f
      .fail(
        `control API enabled but ${unset.join(', ')} not set; create certificates with \`launcher certs init --dir DIR\` and point control.ca/cert/key at ca.pem, server.pem, server.key`,
      )
      .result();
  }
  const files = { ca: control.ca, cert: control.cert, key: control.key };
  const text: Record<string, Buffer> = {};
  for (const [k, path] of Object.entries(files) as [keyof typeof files, string][]) {
    try {
      text[k] = readFileSync(path);
    } catch (err) {
      f.fail(`control.${k} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : `unreadable: ${errorMessage(err)}`}`);
    }
  }
  if (!text.ca || !text.cert || !text.key) return f.result();

  let ca: X509Certificate | undefined;
  let cert: X509Certificate | undefined;
  let key: KeyObject | undefined;
  try {
    ca = new X509Certificate(text.ca);
  } catch (err) {
    f.fail(`control.ca ${files.ca} is not a PEM certificate: ${errorMessage(err)}`);
  }
  try {
    cert = new X509Certificate(text.cert);
  } catch (err) {
    f.fail(`control.cert ${files.cert} is not a PEM certificate: ${errorMessage(err)}`);
  }
  try {
    key = createPrivateKey(text.key);
  } catch (err) {
    f.fail(`control.key ${files.key} is not a PEM private key: ${errorMessage(err)}`);
  }
  if (!ca || !cert || !key) return f.result();

  if (cert.checkPrivateKey(key)) f.pass(`key ${files.key} matches the certificate`);
  else f.fail(`key ${files.key} does not belong to certificate ${files.cert} (CN=${cn(cert.subject)})`);
  if (cert.checkIssued(ca) && cert.verify(ca.publicKey)) f.pass(`certificate CN=${cn(cert.subject)} is signed by CA CN=${cn(ca.subject)}`);
  else f.fail(`certificate ${files.cert} (issuer CN=${cn(cert.issuer)}) was not issued by the CA in ${files.ca} (CN=${cn(ca.subject)})`);
  validity(f, `server certificate CN=${cn(cert.subject)}`, cert, ctx.now);
  validity(f, `CA CN=${cn(ca.subject)}`, ca, ctx.now);
  try {
    const mode = statSync(files.key).mode & 0o777;
    if ((mode & 0o077) !== 0) f.warn(`key ${files.key} has mode ${mode.toString(8).padStart(4, '0')}; expected 0600`);
  } catch {
    // read above; a stat failure now is not worth a finding
  }
  return f.result();
}
