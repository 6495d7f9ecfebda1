/**
 * What a flare holds (issue 18, ADR 0020), gathered into texts keyed by their
 * path inside the archive. Two modes, named in `manifest.json`:
 *
 * - `live`: the supervisor answers on its control API (asked with an admin
 *   client certificate): instances, each one's details, history and osqueryd
 *   output ring (StreamOutput from the run's start, not followed).
 * - `offline`: no supervisor answers: registrations and history come from the
 *   SQLite store, opened read-only; output rings live only in a running
 *   supervisor's memory and are absent.
 *
 * Both: the doctor's report, the config with secrets replaced, the last
 * lines of `<root>/supervisor.log`, the store's quick_check and file sizes,
 * versions, cgroup limits and usage. Nothing is written outside the archive.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { get as httpGet } from 'node:http';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { loadConfigFile } from '../config/load.js';
import type { LauncherConfig } from '../config/schema.js';
import { ControlCallError } from '../control/call-error.js';
import { ControlClient } from '../control/client.js';
import { resolveClientConfig, type ClientConfig } from '../control/client-config.js';
import { defaultListen } from '../control/listen.js';
import type { InstanceInfo } from '../control/target.js';
import { runDoctor } from '../doctor/run.js';
import { errorMessage, isLauncherError, LauncherError } from '../errors.js';
import { SUPERVISOR_LOG_FILE } from '../log/log-file.js';
import { scopeLimits, supervisorGroupDirs } from '../runtime/cgroup-scope.js';
import { isProcessAlive } from '../runtime/proc-info.js';
import { launcherVersion } from '../version.js';
import { redactConfig, Scrubber } from './redact.js';

export interface FlareOptions {
  configPath: string;
  /** ctl's client config (target, ca, admin cert and key); default: ctl's own search, then `<dir of control.ca>/admin.{pem,key}`. */
  ctlConfig?: string;
  /** Supervisor log lines to keep (default 2000). */
  logLines?: number;
  /** Output ring lines per instance (default 2000). */
  outputLines?: number;
  /** Bound for each control API call and doctor probe (default 5000 ms). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** How `ctl --json` styles API objects (src/cli passes its `wireJson`, so `ctl/*.json` read exactly as `ctl --json` prints). */
  jsonStyle?: (value: unknown) => unknown;
}

export interface FlareContents {
  files: Map<string, string>;
  manifest: FlareManifest;
}

export interface FlareManifest {
  format: 1;
  created_at: string;
  hostname: string;
  launcher_version: string;
  node_version: string;
  /** live: asked the running supervisor's control API; offline: read its files (read-only). */
  mode: 'live' | 'offline';
  /** Why offline (the control API's error, or no supervisor holds the root's lock). */
  mode_reason: string;
  supervisor_pid: number | null;
  config_path: string;
  files: string[];
  /** What could not be collected, and why. */
  missing: string[];
  redaction: { known_secret_values: number; too_short_to_search: number; replacements: number };
}

/**
 * A snapshot of the metrics endpoint (issue 18) when the config enables one (`metrics.listen`): one GET of
 * `/metrics` over loopback TCP or the Unix socket, bounded in time (5 s) and size (8 MiB). Undefined, with the
 * reason, when metrics are off or the endpoint does not answer (the supervisor is down, say).
 */
export async function flareMetricsSnapshot(config: LauncherConfig | undefined): Promise<{ text?: string; reason?: string }> {
  const listen = config?.metrics.listen;
  if (!listen) return { reason: 'metrics are off in this configuration (metrics.listen is not set)' };
  const target = listen.startsWith('unix://')
    ? { socketPath: listen.slice('unix://'.length), path: '/metrics' }
    : { host: listen.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''), port: Number(/:(\d+)$/.exec(listen)?.[1]), path: '/metrics' };
  return await new Promise((done) => {
    const req = httpGet({ ...target, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 8 * 1024 * 1024) {
          req.destroy();
          done({ reason: `the metrics endpoint ${listen} answered more than 8 MiB` });
        } else chunks.push(c);
      });
      res.on('end', () =>
        res.statusCode === 200
          ? done({ text: Buffer.concat(chunks).toString('utf8') })
          : done({ reason: `the metrics endpoint ${listen} answered HTTP ${res.statusCode}` }),
      );
      res.on('error', (err) => done({ reason: `reading the metrics endpoint ${listen}: ${errorMessage(err)}` }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', (err) => done({ reason: `the metrics endpoint ${listen} did not answer: ${errorMessage(err)}` }));
  });
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** The last `n` lines of `<root>/supervisor.log.1` + `<root>/supervisor.log`, oldest first. */
export function supervisorLogTail(root: string, n: number): string[] | undefined {
  const files = [`${SUPERVISOR_LOG_FILE}.1`, SUPERVISOR_LOG_FILE].map((f) => join(root, f)).filter((p) => existsSync(p));
  if (files.length === 0) return undefined;
  const lines: string[] = [];
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    lines.push(...text.split('\n').filter((l) => l.length > 0));
    if (lines.length > n * 2) lines.splice(0, lines.length - n);
  }
  return lines.slice(-n);
}

/** The supervisor holding `<root>/supervisor.pid`, if it is alive. */
function lockHolder(root: string): number | undefined {
  try {
    const held = JSON.parse(readFileSync(join(root, 'supervisor.pid'), 'utf8')) as { pid?: unknown };
    return typeof held.pid === 'number' && isProcessAlive(held.pid) ? held.pid : undefined;
  } catch {
    return undefined;
  }
}

function clientConfig(o: FlareOptions, cfg: LauncherConfig): ClientConfig {
  try {
    return resolveClientConfig(o.ctlConfig ? { config: o.ctlConfig } : {}, o.env ?? process.env);
  } catch (err) {
    if (o.ctlConfig) throw err;
    const c = cfg.control;
    if (!c.ca) throw err;
    const dir = dirname(c.ca);
    return { target: c.listen ?? defaultListen(cfg.root_directory), ca: c.ca, cert: join(dir, 'admin.pem'), key: join(dir, 'admin.key') };
  }
}

/** Read-only store facts: quick_check, sizes; registrations and history without secrets; the secrets, for the scrubber only. */
function readStore(root: string, scrub: Scrubber, files: Map<string, string>, missing: string[], offline: boolean): void {
  const dbPath = join(root, 'launcher.sqlite');
  const sizes: Record<string, number | null> = {};
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      sizes[`launcher.sqlite${suffix}`] = statSync(dbPath + suffix).size;
    } catch {
      sizes[`launcher.sqlite${suffix}`] = null;
    }
  }
  const backups: Array<{ name: string; bytes: number; modified: string }> = [];
  try {
    for (const name of readdirSync(join(root, 'backups'))) {
      const st = statSync(join(root, 'backups', name));
      backups.push({ name, bytes: st.size, modified: st.mtime.toISOString() });
    }
  } catch {
    // no backups directory
  }
  let quickCheck: unknown = 'not run: no database';
  if (sizes['launcher.sqlite'] !== null) {
    let db: Database.Database | undefined;
    try {
      db = new Database(dbPath, { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 5000');
      quickCheck = db.pragma('quick_check', { simple: false });
      const has = (t: string) => db!.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(t) !== undefined;
      if (has('registrations')) {
        for (const r of db.prepare('SELECT enroll_secret FROM registrations').all() as Array<{ enroll_secret: string | null }>)
          scrub.add(r.enroll_secret);
        const paths = db.prepare('SELECT enroll_secret_path FROM registrations WHERE enroll_secret_path IS NOT NULL').all() as Array<{
          enroll_secret_path: string;
        }>;
        for (const p of paths) addSecretFile(scrub, p.enroll_secret_path);
      }
      if (has('node_keys_registrations'))
        // Node keys come from the backend: only plausible ones are searched for, so a key such as "acme" cannot
        // make the scrubber erase ordinary words from every file (review).
        for (const r of db.prepare('SELECT node_key FROM node_keys_registrations').all() as Array<{ node_key: string | null }>)
          scrub.add(r.node_key, 16);
      if (offline && has('registrations')) {
        // Every column but the secret: enroll_secret_source says whether there is one.
        const regs = db
          .prepare(
            `SELECT id, CASE WHEN enroll_secret IS NOT NULL THEN 'value' WHEN enroll_secret_path IS NOT NULL THEN 'file' ELSE 'none' END AS enroll_secret_source,
                    enroll_secret_path, limits_json, osquery_flags_json, created_at, disabled_reason, deployment_json, isolation_json
               FROM registrations ORDER BY rowid`,
          )
          .all() as Array<Record<string, unknown> & { id: string }>;
        files.set('ctl/list.json', json(regs));
        for (const r of regs) {
          files.set(`ctl/get-${r.id}.json`, json(r));
          if (has('run_history'))
            files.set(
              `ctl/history-${r.id}.json`,
              json(db.prepare('SELECT * FROM run_history WHERE registration_id = ? ORDER BY seq DESC LIMIT 50').all(r.id)),
            );
        }
      }
    } catch (err) {
      quickCheck = `failed: ${errorMessage(err)}`;
      missing.push(`store: ${errorMessage(err)}`);
    } finally {
      db?.close();
    }
  }
  files.set('store.json', json({ path: dbPath, sizes_bytes: sizes, quick_check: quickCheck, backups }));
}

function addSecretFile(scrub: Scrubber, path: string | undefined): void {
  if (!path) return;
  try {
    scrub.add(readFileSync(path, 'utf8'));
  } catch {
    // unreadable: it cannot leak through us either
  }
}

/** Every private key the config names (the control API's server key; admin/tenant keys beside the CA), for the scrubber only. */
function addKeyFiles(scrub: Scrubber, cfg: LauncherConfig, client: ClientConfig | undefined): void {
  const paths = new Set<string>();
  if (cfg.control.key) paths.add(cfg.control.key);
  if (client) paths.add(client.key);
  for (const dir of new Set([cfg.control.ca, cfg.control.key].filter((p): p is string => !!p).map((p) => dirname(p)))) {
    try {
      for (const name of readdirSync(dir)) if (name.endsWith('.key')) paths.add(join(dir, name));
    } catch {
      // not listable
    }
  }
  for (const p of paths) addSecretFile(scrub, p);
}

const CGROUP_FILES = [
  'memory.limit_in_bytes',
  'memory.usage_in_bytes',
  'memory.max_usage_in_bytes',
  'memory.failcnt',
  'memory.max',
  'memory.current',
  'memory.peak',
  'memory.events',
  'cpu.cfs_quota_us',
  'cpu.cfs_period_us',
  'cpu.max',
  'cpu.stat',
  'cgroup.procs',
];

function readCgroups(root: string, pids: Array<{ id: string; pid: number | null }>, supervisorPid: number | null): unknown {
  const groups: Record<string, Record<string, string>> = {};
  for (const dir of supervisorGroupDirs(scopeLimits(root))) {
    const dirs = [dir];
    try {
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) dirs.push(join(dir, e.name));
    } catch {
      continue;
    }
    for (const d of dirs) {
      const values: Record<string, string> = {};
      for (const f of CGROUP_FILES) {
        try {
          values[f] = readFileSync(join(d, f), 'utf8').trim();
        } catch {
          // not in this hierarchy
        }
      }
      groups[d] = values;
    }
  }
  const procCgroup = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
    } catch {
      return null;
    }
  };
  return {
    groups,
    supervisor: supervisorPid ? { pid: supervisorPid, cgroup: procCgroup(supervisorPid) } : null,
    osqueryd: pids.filter((p) => p.pid).map((p) => ({ registration_id: p.id, pid: p.pid, cgroup: procCgroup(p.pid!) })),
  };
}

/**
 * A flare is an admin's tool: a tenant's certificate lists only its own
 * registration, so when the list lacks one the file names, ask for that one;
 * PERMISSION_DENIED means a tenant's certificate, and the flare stops.
 */
async function assertAdmin(client: ControlClient, listed: InstanceInfo[], cfg: LauncherConfig, certPath: string): Promise<void> {
  const have = new Set(listed.map((i) => i.id));
  const probe = cfg.registrations.find((r) => !have.has(r.id))?.id;
  if (probe === undefined) return;
  try {
    await client.getInstance(probe);
  } catch (err) {
    if (err instanceof ControlCallError && err.failure === 'permission-denied')
      throw new LauncherError(
        'E_PERMISSION_DENIED',
        `the flare needs an admin client certificate; ${certPath} is refused registration ${probe} (a tenant's certificate?)`,
      );
  }
}

async function collectLive(
  client: ControlClient,
  o: FlareOptions,
  cfg: LauncherConfig,
  certPath: string,
  files: Map<string, string>,
  missing: string[],
): Promise<InstanceInfo[]> {
  const version = await client.version();
  const list = await client.listInstances();
  await assertAdmin(client, list, cfg, certPath);
  const ctl = (v: unknown) => json(o.jsonStyle ? o.jsonStyle(v) : v);
  files.set('ctl/version.json', ctl(version));
  files.set('ctl/health.json', ctl(await client.health()));
  files.set('ctl/list.json', ctl(list));
  const limit = o.outputLines ?? 2000;
  for (const inst of list) {
    const id = inst.id;
    try {
      files.set(`ctl/get-${id}.json`, ctl(await client.getInstance(id)));
      files.set(`ctl/history-${id}.json`, ctl(await client.history(id, 50)));
    } catch (err) {
      missing.push(`ctl get/history ${id}: ${errorMessage(err)}`);
    }
    if (!inst.run_id) {
      missing.push(`output ${id}: no run yet`);
      continue;
    }
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), o.timeoutMs ?? 5000);
    const lines: string[] = [];
    try {
      for await (const l of client.streamOutput(id, { fromBeginning: true, follow: false, signal: ac.signal })) {
        if (l.missed > 0) lines.push(`[${l.missed} earlier line(s) no longer in the ring]`);
        lines.push(`${new Date(l.time).toISOString()} ${l.stream} ${l.text}`);
        if (lines.length > limit) lines.splice(0, lines.length - limit);
      }
    } catch (err) {
      if (!ac.signal.aborted) missing.push(`output ${id}: ${errorMessage(err)}`);
    } finally {
      clearTimeout(timer);
    }
    files.set(`output/${id}.txt`, lines.length ? `${lines.join('\n')}\n` : '');
  }
  return list;
}

export async function collectFlare(o: FlareOptions): Promise<FlareContents> {
  const files = new Map<string, string>();
  const missing: string[] = [];
  const scrub = new Scrubber();
  const now = new Date();
  const env = o.env ?? process.env;

  let cfg: LauncherConfig | undefined;
  try {
    cfg = loadConfigFile(o.configPath, env);
    files.set('config.json', json(redactConfig(cfg)));
  } catch (err) {
    // The message names paths and lines, not values.
    files.set('config-error.txt', `${errorMessage(err)}\n`);
    missing.push(`config: ${errorMessage(err)}`);
  }

  const doctor = await runDoctor({ configPath: o.configPath, env, timeoutMs: o.timeoutMs ?? 5000 });
  files.set('doctor.json', json(doctor));

  let mode: FlareManifest['mode'] = 'offline';
  let modeReason = 'no configuration: cannot find the supervisor';
  let supervisorPid: number | null = null;
  let instances: Array<{ id: string; pid: number | null; osqueryd_version?: string | null }> = [];
  if (cfg) {
    for (const r of cfg.registrations) {
      scrub.add(r.enroll_secret);
      addSecretFile(scrub, r.enroll_secret_path);
    }
    supervisorPid = lockHolder(cfg.root_directory) ?? null;
    let client: ClientConfig | undefined;
    try {
      client = clientConfig(o, cfg);
    } catch (err) {
      modeReason = `no admin client certificate for the control API: ${errorMessage(err)}`;
    }
    addKeyFiles(scrub, cfg, client);
    if (client && cfg.control.enabled) {
      const cc = new ControlClient({ ...client, callTimeoutMs: o.timeoutMs ?? 5000 });
      try {
        instances = await collectLive(cc, o, cfg, client.cert, files, missing);
        mode = 'live';
        modeReason = `the supervisor answered on ${client.target}`;
      } catch (err) {
        if (isLauncherError(err, 'E_PERMISSION_DENIED')) throw err;
        modeReason = `the control API at ${client.target} did not answer: ${errorMessage(err)}${
          supervisorPid ? ` (supervisor pid ${supervisorPid} holds the root's lock)` : ' (no supervisor holds the root lock)'
        }`;
      } finally {
        cc.close();
      }
    } else if (!cfg.control.enabled) modeReason = 'the control API is disabled in the configuration';
    if (mode === 'offline') {
      for (const k of [...files.keys()]) if (k.startsWith('ctl/')) files.delete(k);
      missing.push('output rings: they live in the running supervisor only');
    }
    readStore(cfg.root_directory, scrub, files, missing, mode === 'offline');
    if (mode === 'offline') {
      try {
        // The osqueryd version of each registration's latest run, from its history.
        const lastVersion = (id: string) =>
          (JSON.parse(files.get(`ctl/history-${id}.json`) ?? '[]') as Array<{ osqueryd_version?: string | null }>)[0]?.osqueryd_version ??
          null;
        instances = (JSON.parse(files.get('ctl/list.json') ?? '[]') as Array<{ id: string }>).map((r) => ({
          id: r.id,
          pid: null,
          osqueryd_version: lastVersion(r.id),
        }));
      } catch {
        instances = [];
      }
    }
    const tail = supervisorLogTail(cfg.root_directory, o.logLines ?? 2000);
    if (tail) files.set('supervisor.log', `${tail.join('\n')}\n`);
    else missing.push(`supervisor log: no ${join(cfg.root_directory, SUPERVISOR_LOG_FILE)}`);
    files.set('cgroups.json', json(readCgroups(cfg.root_directory, instances, supervisorPid)));
  }

  files.set(
    'versions.json',
    json({
      launcher: launcherVersion(),
      node: process.version,
      osqueryd: instances.map((i) => ({ registration_id: i.id, version: i.osqueryd_version ?? null })),
    }),
  );
  const metrics = await flareMetricsSnapshot(cfg);
  if (metrics.text !== undefined) files.set('metrics.txt', metrics.text);
  else missing.push(`metrics: ${metrics.reason}`);

  for (const [k, v] of files) files.set(k, scrub.scrub(v));
  const manifest: FlareManifest = {
    format: 1,
    created_at: now.toISOString(),
    hostname: hostname(),
    launcher_version: launcherVersion(),
    node_version: process.version,
    mode,
    mode_reason: modeReason,
    supervisor_pid: supervisorPid,
    config_path: o.configPath,
    files: [...files.keys(), 'manifest.json'],
    missing,
    redaction: { known_secret_values: scrub.size, too_short_to_search: scrub.tooShort, replacements: scrub.replaced },
  };
  files.set('manifest.json', scrub.scrub(json(manifest)));
  return { files, manifest };
}
