// Issue 17 end to end: a real supervisor (`bin/launcher run`) with four stand-in osqueryds (vendor kolide,
// tenants acme and globex, tenant initech pinned in the config), the local device server, the mTLS control
// API, and a real TUF repository over HTTP on 127.0.0.1 whose "releases" are bin/osqueryd-sim behind
// wrapper scripts reporting other versions (one crashes soon after it starts).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCertificates } from '../../src/control/certs-init.js';
import { ControlClient } from '../../src/control/client.js';
import type { UpdateStatusInfo } from '../../src/control/target.js';
import { type DevServer, startDevServer } from '../../src/devserver/index.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';
import { simArchive, TufTestRepo } from '../helpers/tuf-repo.js';

const repo = resolve(import.meta.dirname, '../..');
const IDS = ['kolide', 'acme', 'globex', 'initech'];
const SOAK_S = 3;
const STEP_S = 2;
const BASE = '5.12.1-sim'; // what the configured bin/osqueryd-sim reports

let tmp: ReturnType<typeof shortTempDir>;
let dev: DevServer;
let tuf: TufTestRepo;
let admin: ControlClient;
let tenant: ControlClient;
let adminCtlConfig = '';
let listenAddress = '';
let supervisor: ChildProcess | undefined;
let output = '';
const root = () => join(tmp.dir, 'root');
const recentOutput = () => output.split('\n').slice(-60).join('\n');

function startSupervisor(): ChildProcess {
  const child = spawn(process.execPath, [join(repo, 'bin/launcher'), 'run', '--config', join(tmp.dir, 'launcher.yaml')], {
    env: { ...process.env, LAUNCHER_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return child;
}

async function stopSupervisor(): Promise<void> {
  const child = supervisor;
  supervisor = undefined;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await exited;
}

async function explain<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw new Error(`${(err as Error).message}\nsupervisor output:\n${recentOutput()}`);
  }
}

const pids = async (): Promise<Record<string, number | null>> =>
  Object.fromEntries((await admin.listInstances()).map((i) => [i.id, i.pid]));

async function allHealthy(): Promise<Record<string, number | null>> {
  return explain(
    waitFor(
      async () => {
        const list = await admin.listInstances().catch(() => []);
        return list.length === IDS.length && list.every((i) => i.healthy && i.pid) ? pids() : undefined;
      },
      90_000,
      'every instance healthy',
      100,
    ),
  );
}

const status = (): Promise<UpdateStatusInfo> => admin.updateStatus();
const instanceOf = (s: UpdateStatusInfo, id: string) => s.instances.find((i) => i.registrationId === id)!;

/** Versions osqueryd reported in its scheduled `select version from osquery_info`, as delivered to the device server. */
function deliveredVersions(t: string): Set<string> {
  const out = new Set<string>();
  for (const l of dev.logs({ tenant: t })) {
    if (l.logType !== 0) continue;
    const line = JSON.parse(l.data) as { name?: string; columns?: { version?: string }; snapshot?: Array<{ version?: string }> };
    if (line.name !== 'ver') continue;
    if (line.columns?.version) out.add(line.columns.version);
    for (const r of line.snapshot ?? []) if (r.version) out.add(r.version);
  }
  return out;
}

/** The update status logs the backend got for a tenant. */
const updateStatusLogs = (t: string): string[] =>
  dev
    .logs({ tenant: t })
    .filter((l) => l.logType === 4) // LogType.STATUS on the wire
    .map((l) => (JSON.parse(l.data) as { m?: string }).m ?? '')
    .filter((m) => m.startsWith('osquery-launcher update:'));

async function publishRelease(version: string, env: Record<string, string> = {}): Promise<void> {
  tuf.addTarget(`osqueryd/linux/osqueryd-${version}.tar.gz`, await simArchive(tmp.dir, repo, version, env));
  tuf.setChannel('linux', 'stable', version);
  tuf.publish();
}

beforeAll(async () => {
  tmp = shortTempDir('upd');
  for (const t of IDS) writeFileSync(join(tmp.dir, `${t}.secret`), `secret-${t}\n`);
  const config = JSON.stringify({ schedule: { ver: { query: 'select version from osquery_info', interval: 1, snapshot: true } } });
  dev = await startDevServer({ tenants: IDS.map((t) => ({ name: t, secrets: [`secret-${t}`], config })) });
  tuf = await TufTestRepo.start();
  tuf.publish(); // no channel pointer yet: nothing to update to
  const certs = await initCertificates({ dir: join(tmp.dir, 'certs'), tenants: ['acme'] });
  const roles = JSON.parse(readFileSync(certs.rolesFile, 'utf8')) as Record<string, string>;
  const listen = `unix://${join(tmp.dir, 'ctl.sock')}`;
  writeFileSync(
    join(tmp.dir, 'launcher.yaml'),
    [
      `root_directory: ${root()}`,
      `osqueryd_path: ${join(repo, 'bin/osqueryd-sim')}`,
      'log_level: debug',
      `device_server: {url: "${dev.url}", insecure_transport: true}`,
      'registrations:',
      ...IDS.map(
        (t) =>
          `  - {id: ${t}, enroll_secret_path: ${join(tmp.dir, `${t}.secret`)}${t === 'initech' ? `, osqueryd_version: "${BASE}"` : ''}}`,
      ),
      'control:',
      `  listen: "${listen}"`,
      `  ca: ${certs.caCert}`,
      `  cert: ${certs.serverCert}`,
      `  key: ${certs.serverKey}`,
      `  roles: ${JSON.stringify(roles)}`,
      'log_buffer: {publish_interval_seconds: 0.5}',
      'health: {interval_seconds: 1, startup_delay_seconds: 1, failures: 3}',
      'distributed_forwarding_interval_seconds: 1',
      'update:',
      `  metadata_url: ${tuf.metadataUrl}`,
      `  targets_url: ${tuf.targetsUrl}`,
      `  trusted_root: ${tuf.writeTrustedRoot(join(tmp.dir, 'trusted-root.json'))}`,
      '  channel: stable',
      '  check_interval_seconds: 1',
      `  soak_seconds: ${SOAK_S}`,
      `  step_seconds: ${STEP_S}`,
      '  healthy_within_seconds: 40',
      '  timeout_seconds: 20',
      '',
    ].join('\n'),
  );
  admin = new ControlClient({ target: listen, ca: certs.caCert, cert: join(certs.dir, 'admin.pem'), key: join(certs.dir, 'admin.key') });
  const acme = certs.identities.find((i) => i.role === 'tenant:acme')!;
  adminCtlConfig = certs.identities.find((i) => i.role === 'admin')!.config;
  listenAddress = listen;
  tenant = new ControlClient({ target: listen, ca: certs.caCert, cert: acme.cert, key: acme.key });
  supervisor = startSupervisor();
}, 60_000);

afterAll(async () => {
  admin?.close();
  tenant?.close();
  await stopSupervisor();
  await tuf?.close();
  await dev?.close();
  tmp?.cleanup();
});

// Each step waits out real soak periods, restarts and (for the hang) health-check timeouts on a shared machine.
describe('osqueryd updates, end to end', { timeout: 240_000 }, () => {
  let before: Record<string, number | null> = {};

  it('starts on the configured osqueryd; no release in the channel changes nothing', async () => {
    before = await allHealthy();
    const s = await explain(waitFor(async () => ((await status()).lastCheck?.result === 'ok' ? status() : undefined), 30_000, 'a check'));
    expect(s.enabled).toBe(true);
    expect(s.rollout).toBeNull();
    expect(s.lastCheck?.available).toBeNull();
    for (const id of IDS) expect(instanceOf(s, id)).toMatchObject({ runningVersion: BASE, assignedVersion: null });
    expect(instanceOf(s, 'initech')).toMatchObject({ pinnedVersion: BASE, pinSource: 'config' });
    expect(await pids()).toEqual(before);
  });

  it('rolls a good version out canary → soak → the rest one at a time, vendor last; the pinned one stays put', async () => {
    await publishRelease('5.13.0-sim');
    // Review: a tenant restarting its own instance during the canary's soak must not get the version marked bad for
    // the whole host; the soak starts over on the new run.
    await explain(
      waitFor(
        async () => {
          const st = await status();
          return st.rollout?.current === 'acme' && instanceOf(st, 'acme').runningVersion === '5.13.0-sim' ? true : undefined;
        },
        120_000,
        'acme soaking on 5.13.0-sim',
        100,
      ),
    );
    await tenant.restartInstance('acme');
    const s = await explain(
      waitFor(async () => ((await status()).rollout?.state === 'done' ? status() : undefined), 150_000, 'rollout of 5.13.0-sim done', 250),
    );
    expect(s.badVersions).toEqual([]);
    expect(s.rollout).toMatchObject({ version: '5.13.0-sim', canary: 'acme', order: ['acme', 'globex', 'kolide'] });
    const after = await allHealthy();
    for (const id of ['acme', 'globex', 'kolide']) {
      expect(instanceOf(s, id)).toMatchObject({ runningVersion: '5.13.0-sim', assignedVersion: '5.13.0-sim', previousVersion: null });
      expect(after[id]).not.toBe(before[id]);
    }
    expect(after.initech).toBe(before.initech);
    expect(instanceOf(s, 'initech').runningVersion).toBe(BASE);
    // A tenant's osqueryd sees the version directory (it runs from it) but only read-only: the vendor runs it too.
    const acmeInfo = await admin.getInstance('acme');
    if (acmeInfo.isolation?.mode === 'filesystem') {
      const mount = readFileSync(`/proc/${after.acme}/mountinfo`, 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[4]?.endsWith('/osqueryd/5.13.0-sim'));
      expect(mount?.split(' ')[5]?.split(',')).toContain('ro');
    }

    // Run history: the first run on the new version of each, in rollout order, each one only after the one
    // before it had been up its soak/step period (one at a time).
    const firstOn = async (id: string) => {
      const runs = (await admin.history(id, 20)).filter((r) => r.version === '5.13.0-sim');
      return runs[runs.length - 1]!;
    };
    const [acme, globex, kolide] = [await firstOn('acme'), await firstOn('globex'), await firstOn('kolide')];
    expect(acme.osqueryd_path).toBe(join(root(), 'osqueryd', '5.13.0-sim', 'osqueryd'));
    expect(globex.start_time - acme.connect_time!).toBeGreaterThanOrEqual(SOAK_S * 1000);
    expect(kolide.start_time - globex.connect_time!).toBeGreaterThanOrEqual(STEP_S * 1000);
    expect((await admin.history('initech', 20)).every((r) => r.version === BASE || r.version === null)).toBe(true);

    // Nothing lost from the buffers: each moved tenant's results from both versions reached the backend, the
    // buffers drain, and the backend got the update status logs of its own instance only.
    await explain(
      waitFor(
        () => ['acme', 'globex', 'kolide'].every((t) => deliveredVersions(t).has(BASE) && deliveredVersions(t).has('5.13.0-sim')),
        30_000,
        'results of both versions delivered',
        200,
      ),
    );
    // Each buffer (registration × type) is seen empty at least once, and none dropped a log. Not all eight at the
    // same moment: the four osqueryds go on logging every second and each log waits up to a publish interval
    // (0.5 s) in its buffer, at phases set by when each instance and its publisher started, which drift by only
    // ~1 ms/s; such a moment may never come for the whole wait (ADR 0023's amendment). Buffers are FIFO
    // and a log leaves only once the backend accepted it, so a buffer seen empty after the rollout was done has
    // delivered every status log written before, checked below.
    const seenEmpty = new Set<string>();
    const buffers = await explain(
      waitFor(
        async () => {
          const rows = await admin.query('kolide', 'select registration_id, log_type, count, dropped from kolide_launcher_log_buffers');
          for (const r of rows) if (r.count === '0') seenEmpty.add(`${r.registration_id}/${r.log_type}`);
          const all = rows.length === IDS.length * 2 && rows.every((r) => seenEmpty.has(`${r.registration_id}/${r.log_type}`));
          return all ? rows : undefined;
        },
        30_000,
        'every buffer drained',
        250,
      ),
    );
    expect(buffers.filter((r) => r.dropped !== '0')).toEqual([]);
    expect(updateStatusLogs('acme').some((m) => m.includes('acme healthy on osqueryd 5.13.0-sim'))).toBe(true);
    expect(updateStatusLogs('acme').some((m) => m.includes('globex'))).toBe(false);
    expect(updateStatusLogs('kolide').some((m) => m.includes('rolled out to acme, globex, kolide'))).toBe(true);

    // The state table, scoped: the vendor sees every row, a tenant its own.
    const rows = await admin.query(
      'kolide',
      'select registration_id, running_version, assigned_version, rollout_state from kolide_launcher_updates',
    );
    expect(rows.map((r) => r.registration_id).sort()).toEqual([...IDS].sort());
    expect(rows.find((r) => r.registration_id === 'globex')).toMatchObject({ assigned_version: '5.13.0-sim', rollout_state: 'done' });
    const own = await admin.query('acme', 'select registration_id from kolide_launcher_updates');
    expect(own).toEqual([{ registration_id: 'acme' }]);
    // launcher ctl: `update status` and `get` show the versions.
    const ctl = (...args: string[]) =>
      promisify(execFile)(
        process.execPath,
        [join(repo, 'bin/launcher'), 'ctl', '--config', adminCtlConfig, '--target', listenAddress, ...args],
        { encoding: 'utf8' },
      );
    const json = JSON.parse((await ctl('--json', 'update', 'status')).stdout) as {
      instances: Array<{ registration_id: string; assigned_version: string | null }>;
      rollout: { state: string };
    };
    expect(json.rollout.state).toBe('done');
    expect(json.instances.find((i) => i.registration_id === 'globex')?.assigned_version).toBe('5.13.0-sim');
    expect((await ctl('get', 'acme')).stdout).toMatch(/osqueryd update: +assigned 5\.13\.0-sim, pending -, pinned -/);
    expect((await ctl('update', 'status')).stdout).toMatch(/initech +5\.12\.1-sim +osqueryd_path +- +5\.12\.1-sim \(config\)/);
    before = after;
  });

  it('the control API: tenants see their own status and may not pin, not even themselves', async () => {
    before = await allHealthy();
    const mine = await tenant.updateStatus();
    expect(mine.instances.map((i) => i.registrationId)).toEqual(['acme']);
    expect(mine.rollout?.order).toEqual(['acme']);
    for (const call of [
      () => tenant.pinVersion('globex', '5.12.1-sim'),
      () => tenant.pinVersion('acme'),
      () => tenant.unpinVersion('initech'),
    ]) {
      const err = await call().catch((e: unknown) => e);
      expect((err as { failure?: string }).failure).toBe('permission-denied');
    }
    const denied = await tenant.updateStatus('globex').catch((e: unknown) => e);
    expect((denied as { failure?: string }).failure).toBe('permission-denied');
    const bad = await admin.pinVersion('globex', '../../etc').catch((e: unknown) => e);
    expect((bad as { failure?: string }).failure).toBe('invalid-argument');
    expect(await pids()).toEqual(before);
  });

  it('a version that crashes is rolled back on the canary alone; the vendor never restarts; it is marked bad', async () => {
    before = await allHealthy();
    await publishRelease('5.14.0-sim', { OSQUERYD_SIM_FAULTS: 'exit_after_ms=1500' });
    const s = await explain(
      waitFor(
        async () => ((await status()).rollout?.state === 'rolled_back' ? status() : undefined),
        120_000,
        'rollout of 5.14.0-sim rolled back',
        250,
      ),
    );
    expect(s.rollout).toMatchObject({ version: '5.14.0-sim', canary: 'acme', done: [] });
    expect(s.rollout!.detail).toMatch(/acme failed on osqueryd 5\.14\.0-sim/);
    expect(s.badVersions.map((b) => b.version)).toEqual(['5.14.0-sim']);
    const after = await allHealthy();
    expect(after.kolide).toBe(before.kolide);
    expect(after.globex).toBe(before.globex);
    expect(after.initech).toBe(before.initech);
    const acme = instanceOf(await status(), 'acme');
    expect(acme).toMatchObject({ assignedVersion: '5.13.0-sim', runningVersion: '5.13.0-sim', previousVersion: '5.14.0-sim' });
    const runs = await admin.history('acme', 20);
    expect(runs.some((r) => r.osqueryd_path.endsWith('/5.14.0-sim/osqueryd') && r.exit_time !== null)).toBe(true);
    // The status log reaches the backend at the vendor's next publication (up to 0.5 s after the rollback), which
    // may come after the checks above.
    await explain(waitFor(() => updateStatusLogs('kolide').some((m) => m.includes('marked bad')), 10_000, '"marked bad" delivered', 100));
    // Not retried: later checks leave it alone.
    const checked = await admin.checkUpdate();
    expect(checked.rollout?.state).toBe('rolled_back');
    expect(await pids()).toEqual(after);
    before = after;
  });

  it('a version whose osqueryd stops answering health checks is rolled back on the canary too', async () => {
    before = await allHealthy();
    await publishRelease('5.14.5-sim', { OSQUERYD_SIM_FAULTS: 'hang_after_ms=2000' });
    const s = await explain(
      waitFor(
        async () => {
          const st = await status();
          return st.rollout?.version === '5.14.5-sim' && st.rollout.state === 'rolled_back' ? st : undefined;
        },
        120_000,
        'rollout of 5.14.5-sim rolled back',
        250,
      ),
    );
    expect(s.rollout!.detail).toMatch(
      /^acme failed on osqueryd 5\.14\.5-sim: (its health checks fail|its run \S+ ended|it does not answer queries)/,
    );
    expect(s.badVersions.map((b) => b.version).sort()).toEqual(['5.14.0-sim', '5.14.5-sim']);
    const after = await allHealthy();
    expect(after.kolide).toBe(before.kolide);
    expect(after.globex).toBe(before.globex);
    expect(instanceOf(await status(), 'acme')).toMatchObject({ assignedVersion: '5.13.0-sim', runningVersion: '5.13.0-sim' });
  });

  it('refuses a rollback to an older version, a bad signature and an expired timestamp; nothing restarts', async () => {
    before = await allHealthy();
    await publishRelease('5.12.5-sim');
    let s = await explain(
      waitFor(
        async () => ((await admin.checkUpdate()).lastCheck?.result === 'refused' ? status() : undefined),
        20_000,
        'rollback refused',
        250,
      ),
    );
    expect(s.lastCheck?.error).toMatch(/points at 5\.12\.5-sim, older than 5\.13\.0-sim \(a rollback attempt\)/);
    tuf.setChannel('linux', 'stable', '5.13.0-sim');
    tuf.publish({ badTimestampSignature: true });
    s = await admin.checkUpdate();
    expect(s.lastCheck).toMatchObject({ result: 'refused' });
    expect(s.lastCheck?.error).toMatch(/timestamp/i);
    tuf.publish({ timestampExpires: '2021-01-01T00:00:00Z' });
    s = await admin.checkUpdate();
    expect(s.lastCheck?.error).toMatch(/expired/i);
    expect(s.installedVersions).not.toContain('5.12.5-sim');
    expect(await pids()).toEqual(before);
    tuf.publish(); // sound metadata again (5.13.0-sim, which everyone runs)
    s = await admin.checkUpdate();
    expect(s.lastCheck?.result).toBe('ok');
    expect(await pids()).toEqual(before);
  });

  it('a supervisor restart in the middle of a rollout resumes it and finishes it', async () => {
    await publishRelease('5.15.0-sim');
    await explain(
      waitFor(
        async () => {
          const r = (await status()).rollout;
          return r?.version === '5.15.0-sim' && r.state === 'running' && r.current === 'acme';
        },
        60_000,
        'rollout of 5.15.0-sim on its canary',
        100,
      ),
    );
    await stopSupervisor();
    supervisor = startSupervisor();
    await allHealthy();
    const s = await explain(
      waitFor(
        async () => {
          const st = await status().catch(() => undefined);
          return st?.rollout?.version === '5.15.0-sim' && st.rollout.state === 'done' ? st : undefined;
        },
        150_000,
        'resumed rollout of 5.15.0-sim done',
        250,
      ),
    );
    for (const id of ['acme', 'globex', 'kolide']) expect(instanceOf(s, id)).toMatchObject({ runningVersion: '5.15.0-sim' });
    expect(instanceOf(s, 'initech').runningVersion).toBe(BASE);
    expect(output).toMatch(/resuming the rollout in progress/);
  });
});
