import { readFileSync } from 'node:fs';
import { resolve, dirname, isAbsolute } from 'node:path';
import { parseDocument, LineCounter, isMap, type Document } from 'yaml';
import { LauncherError, errorMessage } from '../errors.js';
import { configSchema, type LauncherConfig } from './schema.js';

/** Environment variables that override the file (the usual few). */
export const ENV_OVERRIDES = {
  LAUNCHER_ROOT: 'root_directory',
  LAUNCHER_OSQUERYD_PATH: 'osqueryd_path',
  LAUNCHER_DEVICE_URL: 'device_server.url',
  LAUNCHER_LOG_LEVEL: 'log_level',
  LAUNCHER_CONTROL_LISTEN: 'control.listen',
  LAUNCHER_METRICS_LISTEN: 'metrics.listen',
} as const;

export class ConfigError extends LauncherError {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super('E_CONFIG', `invalid configuration in ${source}:\n  - ${problems.join('\n  - ')}`);
    this.problems = problems;
  }
}

/** Where a parsed config came from, so that later checks (src/app/startup-checks.ts) can name the line too. */
interface ConfigOrigin {
  source: string;
  doc: Document;
  lines: LineCounter;
  /** Config paths set from the environment (`log_level` → `LAUNCHER_LOG_LEVEL=bogus`), reported against the variable, not the file. */
  overrides?: ReadonlyMap<string, string>;
}

const origins = new WeakMap<LauncherConfig, ConfigOrigin>();

/** `path (line N): message`, the form every config problem takes. */
function formatProblem(origin: Omit<ConfigOrigin, 'source'>, path: readonly (string | number)[], message: string): string {
  const keys = path.map(String);
  const override = origin.overrides?.get(keys.join('.'));
  if (override !== undefined) return `${override}: ${message}`;
  const node = isMap(origin.doc.contents) ? origin.doc.getIn(keys, true) : undefined;
  const range = (node as { range?: [number, number] } | undefined)?.range;
  const where = range ? ` (line ${origin.lines.linePos(range[0]).line})` : '';
  return `${keys.length ? keys.join('.') : '(top level)'}${where}: ${message}`;
}

/**
 * A ConfigError for problems found after parsing (e.g. an osquery flag the
 * osqueryd binary does not know), each with its path and line in the file.
 */
export function configProblems(cfg: LauncherConfig, problems: Array<{ path: readonly (string | number)[]; message: string }>): ConfigError {
  const origin = origins.get(cfg);
  const text = problems.map((p) => (origin ? formatProblem(origin, p.path, p.message) : `${p.path.join('.')}: ${p.message}`));
  return new ConfigError(origin?.source ?? '<config>', text);
}

/**
 * Where a parsed value came from, for checks made after parsing: `LAUNCHER_X=value (environment)` when an
 * environment override set it, else `path (line N)` in the file; undefined for a config not parsed here.
 */
export function originOf(cfg: LauncherConfig, path: readonly (string | number)[]): string | undefined {
  const origin = origins.get(cfg);
  if (!origin) return undefined;
  return formatProblem(origin, path, '').replace(/: $/, '');
}

function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys.at(-1)!] = value;
}

/**
 * Parse and validate a YAML config text. Every problem is reported with its
 * path in the file, its line where known, and the reason; nothing starts on
 * an invalid config.
 */
export function parseConfig(
  text: string,
  source = '<config>',
  env: NodeJS.ProcessEnv = process.env,
  baseDir = process.cwd(),
): LauncherConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${pos ? `line ${pos.line}: ` : ''}${e.message.split('\n')[0]}`;
      }),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (err) {
    // An undefined alias or an alias bomb (yaml's maxAliasCount) is only found here, as a ReferenceError.
    throw new ConfigError(source, [`(top level): cannot load the YAML document: ${errorMessage(err)}`]);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(source, ['the top level must be a mapping']);
  const data = raw as Record<string, unknown>;
  const overrides = new Map<string, string>();
  for (const [name, path] of Object.entries(ENV_OVERRIDES)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    setPath(data, path, v);
    overrides.set(path, `${name}=${/^[\w./:@+-]{0,200}$/.test(v) ? v : JSON.stringify(v.slice(0, 200))} (environment)`);
  }
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    throw new ConfigError(
      source,
      parsed.error.issues.map((issue) => formatProblem({ doc, lines, overrides }, issue.path.map(String), issue.message)),
    );
  }
  const cfg = parsed.data;
  // Relative paths in the file are relative to the file; a relative path given in an environment variable is
  // relative to the working directory of the shell that set it (LAUNCHER_OSQUERYD_PATH=bin/osqueryd-sim).
  const abs = (p: string | undefined, key?: string) =>
    p === undefined || isAbsolute(p) ? p : resolve(key !== undefined && overrides.has(key) ? process.cwd() : baseDir, p);
  cfg.root_directory = abs(cfg.root_directory, 'root_directory')!;
  if (cfg.osqueryd_path !== 'auto') cfg.osqueryd_path = abs(cfg.osqueryd_path, 'osqueryd_path')!;
  cfg.device_server.root_pem = abs(cfg.device_server.root_pem);
  cfg.control.ca = abs(cfg.control.ca);
  cfg.control.cert = abs(cfg.control.cert);
  cfg.control.key = abs(cfg.control.key);
  for (const r of cfg.registrations) r.enroll_secret_path = abs(r.enroll_secret_path);
  if (cfg.update && cfg.update.trusted_root !== 'package') cfg.update.trusted_root = abs(cfg.update.trusted_root)!;
  const ids = new Set<string>();
  const dups: string[] = [];
  for (const r of cfg.registrations) {
    if (ids.has(r.id)) dups.push(r.id);
    ids.add(r.id);
  }
  if (dups.length)
    throw new ConfigError(
      source,
      dups.map((d) => `registrations: duplicate id ${JSON.stringify(d)}`),
    );
  origins.set(cfg, { source, doc, lines, overrides });
  return cfg;
}

export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): LauncherConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new LauncherError('E_CONFIG', `cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(text, path, env, dirname(resolve(path)));
}
