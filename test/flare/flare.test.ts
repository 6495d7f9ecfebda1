// issue 18: `launcher flare` against a real supervisor (bin/launcher run with the stand-in osqueryd), up and
// down. Known secrets are planted (inline and file enroll secrets, the node keys the device server hands out,
// the control API's private keys) and every byte of the decompressed archive is searched for them.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { extract } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlCerts, LauncherProcess } from '../../bench/reliability/launcher-process.js';
import { initCertificates } from '../../src/control/certs-init.js';
import { LAUNCHER_BIN } from '../../bench/reliability/paths.js';
import { Stage } from '../../bench/reliability/stage.js';
import { waitFor } from '../../bench/reliability/wait.js';

let stage: Stage;
let proc: LauncherProcess | undefined;
/** The stage's CA with a tenant client too (CN=tenant-acme), to show a tenant's certificate gets no flare. */
let control: ControlCerts;
const secretFile = () => join(stage.dir, 'acme.secret');

function flare(output: string, extra: string[] = []) {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LAUNCHER_')) env[k] = v;
  return spawnSync(
    process.execPath,
    [LAUNCHER_BIN, 'flare', '--config', proc!.configPath, '--output', output, '--timeout-ms', '10000', ...extra],
    {
      env,
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
}

/** Every secret that must never be in a flare. */
function plantedSecrets(): string[] {
  const out = ['secret-kolide', 'secret-acme'];
  const db = new Database(join(stage.root, 'launcher.sqlite'), { readonly: true });
  try {
    for (const r of db.prepare('SELECT node_key FROM node_keys_registrations').all() as Array<{ node_key: string | null }>)
      if (r.node_key) out.push(r.node_key);
  } finally {
    db.close();
  }
  expect(out.length).toBe(4); // both registrations hold a node key
  for (const name of readdirSync(control.certs.dir).filter((n) => n.endsWith('.key'))) {
    const pem = readFileSync(join(control.certs.dir, name), 'utf8');
    // Each base64 line of the key body, and the whole PEM.
    out.push(pem.trim(), ...pem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----')));
  }
  return out;
}

function readArchive(path: string): { raw: string; files: Map<string, string> } {
  const raw = gunzipSync(readFileSync(path)).toString('latin1');
  const dir = join(stage.dir, `x-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir);
  extract({ file: path, cwd: dir, sync: true });
  const files = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else files.set(`${rel}${e.name}`, readFileSync(join(d, e.name), 'utf8'));
    }
  };
  walk(join(dir, 'launcher-flare'), '');
  rmSync(dir, { recursive: true, force: true });
  return { raw, files };
}

function assertNoSecrets(archive: { raw: string; files: Map<string, string> }, secrets: string[]) {
  for (const s of secrets) {
    expect(archive.raw.includes(s), `secret ${s.slice(0, 12)}… in the decompressed archive`).toBe(false);
    for (const [name, text] of archive.files) expect(text.includes(s), `secret ${s.slice(0, 12)}… in ${name}`).toBe(false);
  }
  expect(archive.raw).not.toMatch(/BEGIN [A-Z ]*PRIVATE KEY/);
}

beforeAll(async () => {
  stage = await Stage.create({ prefix: 'flr', registrations: ['kolide', 'acme'] });
  const certs = await initCertificates({ dir: join(stage.dir, 'tc'), tenants: ['acme'] });
  control = { certs, roles: JSON.parse(readFileSync(certs.rolesFile, 'utf8')) as Record<string, string> };
}, 60_000);

afterAll(async () => {
  await proc?.stop();
  await stage?.cleanup();
}, 60_000);

describe('launcher flare', () => {
  it('live, then offline: says which, holds what it should, never a secret', async () => {
    writeFileSync(secretFile(), 'secret-acme\n', { mode: 0o600 });
    proc = LauncherProcess.start({
      ...stage.launcherOptions(),
      control,
      config: {
        registrations: [
          { id: 'kolide', enroll_secret: 'secret-kolide' },
          { id: 'acme', enroll_secret_path: secretFile() },
        ],
        // The flare snapshots the metrics endpoint when one is configured.
        metrics: { listen: `unix://${join(stage.dir, 'metrics.sock')}` },
      },
    });
    await proc.waitHealthy(['kolide', 'acme']);
    await waitFor(
      'both enrolled',
      async () => ((await proc!.client.listInstances()).every((i) => i.device.state === 'enrolled') ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 200, explain: () => proc!.tail(40) },
    );
    const secrets = plantedSecrets();

    const live = join(stage.dir, 'live.tar.gz');
    const r = flare(live);
    expect(r.status, r.stderr).toBe(0);
    expect(lstatSync(live).mode & 0o777).toBe(0o600);
    const a = readArchive(live);
    const manifest = JSON.parse(a.files.get('manifest.json')!);
    expect(manifest.mode).toBe('live');
    expect(manifest.supervisor_pid).toBe(proc.pid);
    for (const f of [
      'doctor.json',
      'config.json',
      'ctl/list.json',
      'ctl/get-kolide.json',
      'ctl/history-acme.json',
      'output/kolide.txt',
      'output/acme.txt',
      'supervisor.log',
      'store.json',
      'versions.json',
      'cgroups.json',
    ])
      expect(a.files.has(f), `${f} in ${[...a.files.keys()].join(', ')}`).toBe(true);
    expect(JSON.parse(a.files.get('ctl/list.json')!).map((i: { id: string }) => i.id)).toEqual(['kolide', 'acme']);
    // As `ctl --json list` prints it: ISO-8601 times.
    expect(JSON.parse(a.files.get('ctl/list.json')!)[0].started_at).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);
    expect(JSON.parse(a.files.get('config.json')!).registrations[0].enroll_secret).toBe('[redacted]');
    expect(JSON.parse(a.files.get('store.json')!).quick_check).toEqual([{ quick_check: 'ok' }]);
    expect(a.files.get('supervisor.log')).toContain('launcher ready');
    expect(a.files.get('output/kolide.txt')!.length).toBeGreaterThan(0);
    expect(JSON.parse(a.files.get('versions.json')!).osqueryd.map((o: { version: string }) => o.version)).not.toContain(null);
    expect(a.files.get('metrics.txt')).toMatch(/^launcher_registrations 2$/m);
    expect(manifest.missing.join(' ')).not.toContain('metrics');
    assertNoSecrets(a, secrets);

    // A tenant's certificate gets no flare (and no file is left behind).
    const tenantCtl = join(stage.dir, 'ctl-acme.json');
    writeFileSync(
      tenantCtl,
      JSON.stringify({
        target: `unix://${join(stage.dir, 'ctl.sock')}`,
        ca: control.certs.caCert,
        cert: join(control.certs.dir, 'tenant-acme.pem'),
        key: join(control.certs.dir, 'tenant-acme.key'),
      }),
    );
    const asTenant = join(stage.dir, 'tenant.tar.gz');
    const t = flare(asTenant, ['--ctl-config', tenantCtl]);
    expect(t.status).toBe(1);
    expect(t.stderr).toMatch(/needs an admin client certificate/);
    expect(existsSync(asTenant)).toBe(false);

    // An existing file and a symlink at the output path are refused and left as they were.
    const existing = join(stage.dir, 'existing.tar.gz');
    writeFileSync(existing, 'keep me');
    const again = flare(existing);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already exists/);
    expect(readFileSync(existing, 'utf8')).toBe('keep me');
    const target = join(stage.dir, 'target');
    writeFileSync(target, 'untouched');
    const link = join(stage.dir, 'link.tar.gz');
    symlinkSync(target, link);
    expect(flare(link).status).toBe(1);
    expect(readFileSync(target, 'utf8')).toBe('untouched');
    const dangling = join(stage.dir, 'dangling.tar.gz');
    symlinkSync(join(stage.dir, 'nowhere'), dangling);
    expect(flare(dangling).status).toBe(1);
    expect(existsSync(join(stage.dir, 'nowhere'))).toBe(false);

    // Down: the same facts from the files, read-only.
    await proc.stop();
    // A line that leaked secrets (as a bug elsewhere could) is scrubbed, not copied.
    writeFileSync(join(stage.root, 'supervisor.log'), `{"msg":"leak ${secrets[2]} secret-acme ${secrets[4]}"}\n`, { flag: 'a' });
    const dbBefore = readFileSync(join(stage.root, 'launcher.sqlite'));
    const offline = join(stage.dir, 'offline.tar.gz');
    const o = flare(offline);
    expect(o.status, o.stderr).toBe(0);
    const b = readArchive(offline);
    const m2 = JSON.parse(b.files.get('manifest.json')!);
    expect(m2.mode).toBe('offline');
    expect(m2.mode_reason).toMatch(/did not answer/);
    expect(m2.supervisor_pid).toBe(null);
    const regs = JSON.parse(b.files.get('ctl/list.json')!);
    expect(regs.map((x: { id: string }) => x.id)).toEqual(['kolide', 'acme']);
    expect(regs[0].enroll_secret_source).toBe('value');
    expect(JSON.parse(b.files.get('ctl/history-kolide.json')!).length).toBeGreaterThan(0);
    expect(b.files.get('supervisor.log')).toContain('stopped by signal');
    expect(b.files.get('supervisor.log')).toContain('leak [redacted] [redacted] [redacted]');
    expect(m2.redaction.replacements).toBeGreaterThanOrEqual(3);
    expect([...b.files.keys()].some((f) => f.startsWith('output/'))).toBe(false);
    expect(m2.missing.join(' ')).toContain('output rings');
    expect(JSON.parse(b.files.get('versions.json')!).osqueryd.map((v: { version: string }) => v.version)).not.toContain(null);
    assertNoSecrets(b, secrets);
    expect(readFileSync(join(stage.root, 'launcher.sqlite')).equals(dbBefore)).toBe(true);
  }, 240_000);
});
