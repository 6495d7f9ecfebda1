/**
 * Client configuration of `launcher ctl`: a JSON file
 *   { "target": "unix:///…/control.sock", "ca": "ca.pem", "cert": "admin.pem", "key": "admin.key" }
 * (relative paths are relative to the file), overridable per option.
 * Lookup when --config is not given: $LAUNCHER_CTL_CONFIG, else
 * ./.launcher-demo/ctl.json if present, else $LAUNCHER_ROOT/ctl.json.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { LauncherError, errorMessage } from '../errors.js';

export interface ClientConfig {
  target: string;
  ca: string;
  cert: string;
  key: string;
  serverName?: string;
}

export const CLIENT_CONFIG_NAME = 'ctl.json';

const fileSchema = z.object({
  target: z.string().min(1).optional(),
  ca: z.string().min(1).optional(),
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  serverName: z.string().min(1).optional(),
});

type PartialConfig = Partial<ClientConfig>;

export function loadClientConfigFile(file: string): PartialConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new LauncherError('E_CONFIG', `cannot read client config ${file}: ${errorMessage(err)}`, { cause: err });
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw new LauncherError('E_CONFIG', `invalid client config ${file}: ${z.prettifyError(parsed.error)}`);
  const base = dirname(resolve(file));
  const out: PartialConfig = { ...parsed.data };
  for (const k of ['ca', 'cert', 'key'] as const) {
    const v = out[k];
    if (v !== undefined) out[k] = resolve(base, v);
  }
  return out;
}

/** The config file to use when none is named, or undefined. */
export function findClientConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string | undefined {
  // The same order as the demo picks its root: an explicit LAUNCHER_ROOT beats the default ./.launcher-demo.
  if (env.LAUNCHER_CTL_CONFIG) return env.LAUNCHER_CTL_CONFIG;
  if (env.LAUNCHER_ROOT) return join(resolve(cwd, env.LAUNCHER_ROOT), CLIENT_CONFIG_NAME);
  const demo = join(cwd, '.launcher-demo', CLIENT_CONFIG_NAME);
  if (existsSync(demo)) return demo;
  return undefined;
}

export interface ClientConfigFlags extends PartialConfig {
  config?: string;
}

/** Merge --config (or the default file) with individual flags; every field must end up set. */
export function resolveClientConfig(flags: ClientConfigFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ClientConfig {
  const allFlags = Boolean(flags.target && flags.ca && flags.cert && flags.key);
  const file = flags.config ?? (allFlags ? undefined : findClientConfig(env, cwd));
  // A named file must exist; a default location is only used when present.
  const fromFile = file && (flags.config !== undefined || existsSync(file)) ? loadClientConfigFile(file) : {};
  const merged: PartialConfig = { ...fromFile };
  for (const k of ['target', 'ca', 'cert', 'key', 'serverName'] as const) {
    const v = flags[k];
    if (v !== undefined) merged[k] = k === 'target' || k === 'serverName' ? v : resolve(cwd, v);
  }
  const missing = (['target', 'ca', 'cert', 'key'] as const).filter((k) => !merged[k]);
  if (missing.length > 0) {
    const where = file
      ? `config ${file}`
      : 'no config file found ($LAUNCHER_CTL_CONFIG, ./.launcher-demo/ctl.json, $LAUNCHER_ROOT/ctl.json)';
    throw new LauncherError('E_CONFIG', `missing ${missing.map((k) => `--${k}`).join(', ')} (${where}); pass them or --config FILE`);
  }
  return merged as ClientConfig;
}

/** A human-readable problem with the client certificate (unreadable, expired, not yet valid), or undefined. */
export function clientCertificateProblem(certPath: string, now = new Date()): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(certPath));
  } catch (err) {
    return `cannot read client certificate ${certPath}: ${errorMessage(err)}`;
  }
  if (now.getTime() > Date.parse(cert.validTo)) return `client certificate ${certPath} expired on ${new Date(cert.validTo).toISOString()}`;
  if (now.getTime() < Date.parse(cert.validFrom))
    return `client certificate ${certPath} is not valid before ${new Date(cert.validFrom).toISOString()}`;
  return undefined;
}
