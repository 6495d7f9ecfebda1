/**
 * The on-disk layout `launcher certs init` creates (one flat directory):
 *
 *   ca.pem / ca.key                 local CA (key 0600, keep it offline if you can)
 *   server.pem / server.key         control server (SAN localhost, 127.0.0.1, ::1)
 *   admin.pem / admin.key           client "CN=admin"        → role admin
 *   tenant-<id>.pem / .key          client "CN=tenant-<id>"  → role tenant:<id>
 *   roles.json                      { "CN=admin": "admin", "CN=tenant-acme": "tenant:acme", ... }
 *   ctl.json                        client config of admin (what `launcher ctl` reads by default)
 *   ctl-tenant-<id>.json            client config of each tenant
 *
 * Private keys are written 0600, everything else 0644; the directory is
 * created 0700. Client configs use paths relative to themselves.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LauncherError } from '../errors.js';
import {
  createCertificateAuthority,
  issueClientCertificate,
  issueServerCertificate,
  loadCertificateAuthority,
  type CertificateAuthority,
  type IssuedCertificate,
} from './certs.js';
import { CLIENT_CONFIG_NAME } from './client-config.js';
import { defaultListen } from './listen.js';
import { registrationId } from './validate.js';

export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca.key';
export const SERVER_CERT_FILE = 'server.pem';
export const SERVER_KEY_FILE = 'server.key';
export const ROLES_FILE = 'roles.json';

export interface CertsInitOptions {
  dir: string;
  /** Registration ids; each gets client `CN=tenant-<id>` with role `tenant:<id>`. */
  tenants?: string[];
  /** Admin client names (default ['admin']). */
  admins?: string[];
  /** Target written into the client configs (default unix://<dir>/control.sock). */
  target?: string;
  /** Validity of server and client certificates (default 825 days). */
  days?: number;
  /** Replace an existing CA (every certificate issued by it stops working). */
  force?: boolean;
}

export interface IdentityFiles {
  subject: string;
  role: string;
  cert: string;
  key: string;
  config: string;
}

export interface CertsInitResult {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  rolesFile: string;
  identities: IdentityFiles[];
}

export function writePrivate(path: string, data: string): void {
  if (existsSync(path)) unlinkSync(path); // never inherit looser permissions of an old file
  writeFileSync(path, data, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
}

export function writePublic(path: string, data: string): void {
  writeFileSync(path, data, { mode: 0o644 });
  chmodSync(path, 0o644);
}

function readRoles(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
}

interface Identity {
  name: string;
  role: string;
  configName: string;
}

function identitiesFor(tenants: string[], admins: string[]): Identity[] {
  const out: Identity[] = [];
  for (const name of admins) out.push({ name, role: 'admin', configName: name === 'admin' ? CLIENT_CONFIG_NAME : `ctl-${name}.json` });
  for (const id of tenants) {
    registrationId(id, 'tenant');
    out.push({ name: `tenant-${id}`, role: `tenant:${id}`, configName: `ctl-tenant-${id}.json` });
  }
  const names = out.map((i) => i.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new LauncherError('E_INVALID_ARGUMENT', `identity ${dup} given twice`);
  return out;
}

async function writeIdentities(
  dir: string,
  ca: CertificateAuthority,
  identities: Identity[],
  target: string,
  days: number | undefined,
): Promise<IdentityFiles[]> {
  const rolesFile = join(dir, ROLES_FILE);
  const roles = readRoles(rolesFile);
  const written: IdentityFiles[] = [];
  for (const identity of identities) {
    const issued: IssuedCertificate = await issueClientCertificate(ca, identity.name, { days });
    const cert = join(dir, `${identity.name}.pem`);
    const key = join(dir, `${identity.name}.key`);
    const config = join(dir, identity.configName);
    writePublic(cert, issued.cert);
    writePrivate(key, issued.key);
    const clientConfig = { target, ca: CA_CERT_FILE, cert: `${identity.name}.pem`, key: `${identity.name}.key` };
    writePublic(config, `${JSON.stringify(clientConfig, null, 2)}\n`);
    roles[`CN=${identity.name}`] = identity.role;
    written.push({ subject: `CN=${identity.name}`, role: identity.role, cert, key, config });
  }
  writePublic(rolesFile, `${JSON.stringify(roles, null, 2)}\n`);
  return written;
}

/** Create a CA, the server certificate and client certificates in `dir`. */
export async function initCertificates(options: CertsInitOptions): Promise<CertsInitResult> {
  const dir = resolve(options.dir);
  const identities = identitiesFor(options.tenants ?? [], options.admins ?? ['admin']);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caCert = join(dir, CA_CERT_FILE);
  if (!options.force && (existsSync(caCert) || existsSync(join(dir, CA_KEY_FILE)))) {
    throw new LauncherError(
      'E_ALREADY_EXISTS',
      `${dir} already has a CA (${CA_CERT_FILE}); use \`certs issue\` to add identities or --force to replace it`,
    );
  }
  if (options.force) {
    const rolesFile = join(dir, ROLES_FILE);
    if (existsSync(rolesFile)) unlinkSync(rolesFile); // old subjects belong to the old CA
  }
  const ca = await createCertificateAuthority();
  writePublic(caCert, ca.cert);
  writePrivate(join(dir, CA_KEY_FILE), ca.key);
  const server = await issueServerCertificate(ca, { days: options.days });
  const serverCert = join(dir, SERVER_CERT_FILE);
  const serverKey = join(dir, SERVER_KEY_FILE);
  writePublic(serverCert, server.cert);
  writePrivate(serverKey, server.key);
  const target = options.target ?? defaultListen(dir);
  const written = await writeIdentities(dir, ca, identities, target, options.days);
  return { dir, caCert, serverCert, serverKey, rolesFile: join(dir, ROLES_FILE), identities: written };
}

/** Issue more client certificates with the CA already in `dir` (roles.json is updated). */
export async function issueCertificates(options: Omit<CertsInitOptions, 'force'>): Promise<IdentityFiles[]> {
  const dir = resolve(options.dir);
  const caCert = join(dir, CA_CERT_FILE);
  const caKey = join(dir, CA_KEY_FILE);
  if (!existsSync(caCert) || !existsSync(caKey)) {
    throw new LauncherError('E_NOT_FOUND', `${dir} has no CA (${CA_CERT_FILE}, ${CA_KEY_FILE}); run \`certs init\` first`);
  }
  const ca = await loadCertificateAuthority(readFileSync(caCert, 'utf8'), readFileSync(caKey, 'utf8'));
  const identities = identitiesFor(options.tenants ?? [], options.admins ?? []);
  if (identities.length === 0) throw new LauncherError('E_INVALID_ARGUMENT', 'nothing to issue: give --tenant ID or --admin NAME');
  return writeIdentities(dir, ca, identities, options.target ?? defaultListen(dir), options.days);
}
