/**
 * Certificates for the control API's mutual TLS: a local CA, the server's
 * certificate and one client certificate per identity. All keys are ECDSA
 * P-256, generated and signed with Node's WebCrypto through @peculiar/x509.
 * Keys are exported as PKCS#8 PEM. Nothing here touches the filesystem
 * (see certs-init.ts for the directory layout).
 */
import { webcrypto, randomBytes } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { LauncherError } from '../errors.js';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
// @peculiar/x509 declares its parameters with the DOM WebCrypto types, which
// this Node-only project does not load; Node's implementation is the same API.
type X509Crypto = Parameters<typeof x509.X509CertificateGenerator.create>[1];
const crypto = webcrypto as unknown as X509Crypto & webcrypto.Crypto;
const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const DAY_MS = 24 * 60 * 60 * 1000;
/** Tolerate small clock differences between the issuing and the verifying host. */
const BACKDATE_MS = 5 * 60 * 1000;

export interface IssuedCertificate {
  /** PEM certificate. */
  cert: string;
  /** PEM PKCS#8 private key. */
  key: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
}

/** A CA able to sign: its certificate plus the private key as a WebCrypto key. */
export interface CertificateAuthority extends IssuedCertificate {
  readonly signingKey: CryptoKey;
  readonly certificate: x509.X509Certificate;
}

export interface ValidityOptions {
  /** Default: now minus 5 minutes. */
  notBefore?: Date;
  /** Default: notBefore + `days`. */
  notAfter?: Date;
  days?: number;
}

export interface ServerCertificateOptions extends ValidityOptions {
  commonName?: string;
  /** Default: localhost (the authority grpc-js uses for unix: targets). */
  dnsNames?: string[];
  /** Default: 127.0.0.1 and ::1. */
  ipAddresses?: string[];
}

function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f; // positive INTEGER
  return bytes.toString('hex');
}

function validity(options: ValidityOptions, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const notBefore = options.notBefore ?? new Date(Date.now() - BACKDATE_MS);
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + (options.days ?? defaultDays) * DAY_MS);
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new LauncherError(
      'E_INVALID_ARGUMENT',
      `certificate notAfter ${notAfter.toISOString()} is not after notBefore ${notBefore.toISOString()}`,
    );
  }
  return { notBefore, notAfter };
}

/** Certificate common names: printable, no DN syntax characters. */
export function assertCommonName(cn: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/.test(cn)) {
    throw new LauncherError(
      'E_INVALID_ARGUMENT',
      `invalid certificate common name ${JSON.stringify(cn)}: use letters, digits, space, '.', '_' or '-' (at most 64)`,
    );
  }
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importKeyPem(pem: string): Promise<CryptoKey> {
  const [der] = x509.PemConverter.decode(pem);
  if (!der) throw new LauncherError('E_INVALID_ARGUMENT', 'CA key PEM contains no key');
  return crypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, true, ['sign']);
}

export async function createCertificateAuthority(options: ValidityOptions & { commonName?: string } = {}): Promise<CertificateAuthority> {
  // A random suffix tells CAs from different `certs init` runs apart in error messages.
  const commonName = options.commonName ?? `osquery-launcher local CA ${randomBytes(3).toString('hex')}`;
  assertCommonName(commonName);
  const { notBefore, notAfter } = validity(options, 3650);
  const keys = await generateKeys();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: `CN=${commonName}`,
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return {
    cert: certificate.toString('pem'),
    key: await exportKeyPem(keys.privateKey),
    subject: certificate.subject,
    notBefore,
    notAfter,
    signingKey: keys.privateKey,
    certificate,
  };
}

/** A CA from its PEM files (e.g. to issue more client certificates later). */
export async function loadCertificateAuthority(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  const certificate = new x509.X509Certificate(certPem);
  const signingKey = await importKeyPem(keyPem);
  return {
    cert: certPem,
    key: keyPem,
    subject: certificate.subject,
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    signingKey,
    certificate,
  };
}

async function issue(
  ca: CertificateAuthority,
  commonName: string,
  options: ValidityOptions,
  extensions: x509.Extension[],
): Promise<IssuedCertificate> {
  assertCommonName(commonName);
  const { notBefore, notAfter } = validity(options, 825);
  const keys = await generateKeys();
  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: `CN=${commonName}`,
      issuer: ca.certificate.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: ca.signingKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        ...extensions,
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return {
    cert: certificate.toString('pem'),
    key: await exportKeyPem(keys.privateKey),
    subject: certificate.subject,
    notBefore,
    notAfter,
  };
}

export async function issueServerCertificate(ca: CertificateAuthority, options: ServerCertificateOptions = {}): Promise<IssuedCertificate> {
  const names: x509.JsonGeneralNames = [
    ...(options.dnsNames ?? ['localhost']).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ipAddresses ?? ['127.0.0.1', '::1']).map((value) => ({ type: 'ip' as const, value })),
  ];
  return issue(ca, options.commonName ?? 'osquery-launcher', options, [
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
    new x509.SubjectAlternativeNameExtension(names, false),
  ]);
}

/** A client certificate; its subject (`CN=<commonName>`) is the caller's identity. */
export async function issueClientCertificate(
  ca: CertificateAuthority,
  commonName: string,
  options: ValidityOptions = {},
): Promise<IssuedCertificate> {
  return issue(ca, commonName, options, [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false)]);
}
