/**
 * TLS settings of the device client (docs/protocol/device.md#tls): TLS 1.2 minimum, SNI
 * = hostname, optional root PEM that replaces the system roots, optional
 * SubjectPublicKeyInfo SHA-256 pins checked against the verified chain, and
 * `insecure` (no verification) only when asked for.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import tls, { type PeerCertificate, type DetailedPeerCertificate } from 'node:tls';
import { LauncherError, errorMessage } from '../errors.js';

export interface DeviceTlsConfig {
  /** PEM file whose certificates replace the system roots. */
  rootPemPath?: string;
  /** Hex SHA-256 of a SubjectPublicKeyInfo; some cert in the verified chain must match one. */
  certPins?: readonly string[];
  /** Skip certificate verification. Incompatible with pins. */
  insecure?: boolean;
}

export interface TlsRequestOptions {
  minVersion: 'TLSv1.2';
  rejectUnauthorized: boolean;
  ca?: string[];
  servername?: string;
  checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined;
}

/** Thrown from the handshake when no cert of the chain matches a pin. */
export class CertPinError extends LauncherError {
  constructor(host: string, seen: string[]) {
    super('E_TLS', `certificate pin mismatch for ${host}: none of the chain's SPKI SHA-256 [${seen.join(', ')}] is pinned`);
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Every certificate of a PEM file, validated; a file with none is an error. */
export function loadRootPem(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new LauncherError('E_TLS', `cannot read root PEM ${path}: ${errorMessage(err)}`, { cause: err });
  }
  const blocks = text.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new LauncherError('E_TLS', `root PEM ${path} contains no certificates`);
  blocks.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new LauncherError('E_TLS', `root PEM ${path}: certificate #${i + 1} is invalid: ${errorMessage(err)}`, { cause: err });
    }
  });
  return blocks;
}

export function normalisePins(pins: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const raw of pins) {
    const pin = raw.trim().toLowerCase();
    if (pin === '') continue;
    if (!/^[0-9a-f]{64}$/.test(pin)) {
      throw new LauncherError('E_TLS', `cert pin ${JSON.stringify(raw)} is not a hex SHA-256 (64 hex digits)`);
    }
    out.add(pin);
  }
  return out;
}

/**
 * Hex SHA-256 of a certificate's SubjectPublicKeyInfo (DER). Taken from the
 * raw certificate: a peer certificate's `pubkey` is the bare EC point for EC
 * keys, not the SPKI.
 */
export function spkiSha256(cert: Pick<PeerCertificate, 'raw'>): string {
  const spki = new X509Certificate(cert.raw).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex');
}

/** Walk a detailed peer certificate up its issuer links (the last one links to itself). */
function chainOf(cert: PeerCertificate): PeerCertificate[] {
  const chain: PeerCertificate[] = [];
  let c: PeerCertificate | undefined = cert;
  while (c && Object.keys(c).length > 0 && !chain.includes(c)) {
    chain.push(c);
    c = (c as DetailedPeerCertificate).issuerCertificate;
  }
  return chain;
}

export function buildTlsOptions(config: DeviceTlsConfig, hostname: string): TlsRequestOptions {
  const insecure = config.insecure === true;
  const pins = normalisePins(config.certPins ?? []);
  if (insecure && pins.size > 0) {
    // Go's pin check runs over verified chains, which `insecure` leaves empty: it can never pass.
    throw new LauncherError('E_TLS', 'cert pins cannot be checked with insecure (certificate verification off); remove one of them');
  }
  const options: TlsRequestOptions = { minVersion: 'TLSv1.2', rejectUnauthorized: !insecure };
  if (isIP(hostname) === 0) options.servername = hostname;
  if (config.rootPemPath) options.ca = loadRootPem(config.rootPemPath);
  if (pins.size > 0) {
    // Node calls this only after the chain verified, with the detailed chain.
    options.checkServerIdentity = (host, cert) => {
      const err = tls.checkServerIdentity(host, cert);
      if (err) return err;
      const seen = chainOf(cert).map(spkiSha256);
      return seen.some((h) => pins.has(h)) ? undefined : new CertPinError(host, seen);
    };
  }
  return options;
}
