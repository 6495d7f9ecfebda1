// Issue 8: the whole-mission acceptance test. A real supervisor process
// (`bin/launcher run`), real stand-in osqueryds, the real local device server,
// the real control API over mutual TLS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { shortTempDir, waitFor } from '../helpers/tmp.js';
import { writeSupervisorConfig } from '../helpers/supervisor-config.js';
import { startDevServer, type DevServer } from '../../src/devserver/index.js';
import { initCertificates } from '../../src/control/certs-init.js';
import { ControlClient } from '../../src/control/client.js';

const repo = resolve(import.meta.dirname, '../..');
const CRASH = 'crash_marker_7f3a';
const VENDOR_QUERY = 'vendor_clock';
const VENDOR_INTERVAL = 2; // seconds

let tmp: ReturnType<typeof shortTempDir>;
let dev: DevServer;
let admin: ControlClient;
let supervisor: ChildProcess | undefined;
let output = '';
const root = () => join(tmp.dir, 'root');
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function startSupervisor(): ChildProcess {
  const child = spawn(process.execPath, [join(repo, 'bin/launcher'), 'run', '--config', join(tmp.dir, 'launcher.yaml')], {
    env: { ...process.env, LAUNCHER_LOG_FORMAT: 'json', OSQUERYD_SIM_FAULTS: `crash_on_query=${CRASH}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return child;
}

async function stopSupervisor(): Promise<number | null> {
  const child = supervisor;
  supervisor = undefined;
  if (!child || child.exitCode !== null) return child?.exitCode ?? null;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return exited;
}

/** The supervisor's last log lines, to explain a failure. */
const recentOutput = () => output.split('\n').slice(-40).join('\n');

async function healthy(id: string) {
  try {
    return await waitFor(
      async () => {
        const i = await admin.getInstance(id).catch(() => undefined);
        return i?.healthy && i.pid ? i : undefined;
      },
      45_000,
      `${id} healthy`,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nsupervisor output:\n${recentOutput()}`);
  }
}

/** Executions of the vendor's scheduled query that reached the device server: [counter, unixTime]. */
function vendorRuns(): Array<[number, number]> {
  const runs = new Map<number, number>();
  for (const log of dev.logs({ tenant: 'kolide' })) {
    if (log.logType !== 0) continue;
    const line = JSON.parse(log.data) as { name?: string; counter?: number; unixTime?: number };
    if (line.name === VENDOR_QUERY && typeof line.counter === 'number') runs.set(line.counter, Number(line.unixTime));
  }
  return [...runs.entries()].sort((a, b) => a[0] - b[0]);
}

beforeAll(async () => {
  tmp = shortTempDir('acc');
  const secret = (t: string) => {
    writeFileSync(join(tmp.dir, `${t}.secret`), `secret-${t}\n`);
    return `secret-${t}`;
  };
  dev = await startDevServer({
    tenants: [
      {
        name: 'kolide',
        secrets: [secret('kolide')],
        config: JSON.stringify({ schedule: { [VENDOR_QUERY]: { query: 'select unix_time from time', interval: VENDOR_INTERVAL } } }),
      },
      {
        name: 'acme',
        secrets: [secret('acme')],
        config: JSON.stringify({ schedule: { acme_uptime: { query: 'select total_seconds from uptime', interval: 2, snapshot: true } } }),
      },
      { name: 'globex', secrets: [secret('globex')] },
    ],
  });
  const certs = await initCertificates({ dir: join(tmp.dir, 'certs'), tenants: ['acme'] });
  const listen = `unix://${join(tmp.dir, 'ctl.sock')}`;
  writeSupervisorConfig(join(tmp.dir, 'launcher.yaml'), {
    repo,
    root: root(),
    deviceServerUrl: dev.url,
    registrations: [{ id: 'kolide', secretPath: join(tmp.dir, 'kolide.secret') }],
    listen,
    certs,
  });
  admin = new ControlClient({ target: listen, ca: certs.caCert, cert: join(certs.dir, 'admin.pem'), key: join(certs.dir, 'admin.key') });
  supervisor = startSupervisor();
});

afterAll(async () => {
  admin?.close();
  await stopSupervisor();
  await dev?.close();
  tmp?.cleanup();
});

describe('whole mission', () => {
  let vendorPid = 0;
  let acmePid = 0;

  it('the vendor instance enrolls and receives its config', async () => {
    const vendor = await healthy('kolide');
    vendorPid = vendor.pid!;
    await waitFor(() => dev.nodes('kolide').length === 1, 20_000, 'vendor enrolled');
    await waitFor(() => dev.stats().served.RequestConfig >= 1, 20_000, 'vendor config served');
    await waitFor(() => vendorRuns().length >= 2, 30_000, 'vendor scheduled results delivered');
  });

  it('enrolls tenant acme at runtime through the control API without restarting the vendor', async () => {
    await admin.addRegistration({ id: 'acme', enrollSecretPath: join(tmp.dir, 'acme.secret') });
    const acme = await healthy('acme');
    acmePid = acme.pid!;
    expect(acmePid).not.toBe(vendorPid);
    expect((await admin.getInstance('kolide')).pid).toBe(vendorPid);
    await waitFor(() => dev.nodes('acme').length === 1, 20_000, 'acme enrolled');
  });

  it("runs each tenant's distributed query only in its own osqueryd", async () => {
    const vq = dev.addQuery('kolide', "select 'vendor-only' as who");
    const aq = dev.addQuery('acme', "select 'acme-only' as who");
    await waitFor(
      () => dev.results({ tenant: 'kolide', queryName: vq }).length > 0 && dev.results({ tenant: 'acme', queryName: aq }).length > 0,
      40_000,
      'both results',
    );
    expect(dev.results({ tenant: 'kolide', queryName: vq })[0]!.rows).toEqual([{ who: 'vendor-only' }]);
    expect(dev.results({ tenant: 'acme', queryName: aq })[0]!.rows).toEqual([{ who: 'acme-only' }]);
    const queryLog = (id: string) => {
      const dir = join(root(), 'registrations', id);
      const file = readdirSync(dir).find((f) => f.endsWith('.queries.log'));
      return file ? readFileSync(join(dir, file), 'utf8') : readFileSync(join(dir, 'osquery.db.queries.log'), 'utf8');
    };
    expect(queryLog('kolide')).toContain('vendor-only');
    expect(queryLog('kolide')).not.toContain('acme-only');
    expect(queryLog('acme')).toContain('acme-only');
    expect(queryLog('acme')).not.toContain('vendor-only');
  });

  it("a query that crashes acme's osqueryd restarts only acme; the vendor's schedule never stops", async () => {
    const before = vendorRuns().length;
    const crashed = await admin.query('acme', `select '${CRASH}' as boom`, 5_000).then(
      () => false,
      () => true,
    );
    expect(crashed).toBe(true);
    await waitFor(() => !alive(acmePid), 10_000, 'old acme osqueryd gone');
    const acme = await waitFor(
      async () => {
        const i = await admin.getInstance('acme');
        return i.healthy && i.pid && i.pid !== acmePid ? i : undefined;
      },
      30_000,
      'acme back with a new pid',
    );
    expect(acme.restarts).toBeGreaterThanOrEqual(1);
    expect((await admin.getInstance('kolide')).pid).toBe(vendorPid);
    expect((await admin.getInstance('kolide')).restarts).toBe(0);
    const history = await admin.history('acme');
    expect(history.length).toBeGreaterThanOrEqual(2);
    expect(history.some((r) => r.signal === 'SIGABRT' || (r.exit_code !== null && r.exit_code !== 0))).toBe(true);
    // The vendor's schedule kept running through the crash: consecutive
    // executions (no counter missing), and no gap beyond one interval.
    await waitFor(() => vendorRuns().length >= before + 2, 30_000, 'vendor results after the crash');
    const runs = vendorRuns();
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i]![0]).toBe(runs[i - 1]![0] + 1);
      expect(runs[i]![1] - runs[i - 1]![1]).toBeLessThanOrEqual(2 * VENDOR_INTERVAL);
    }
    expect(alive(vendorPid)).toBe(true);
  });

  it('removes acme: its process and files are gone', async () => {
    const pid = (await admin.getInstance('acme')).pid!;
    await admin.removeRegistration('acme');
    await waitFor(() => !alive(pid), 10_000, 'acme osqueryd gone');
    expect(existsSync(join(root(), 'registrations', 'acme'))).toBe(false);
    expect((await admin.listInstances()).map((i) => i.id)).toEqual(['kolide']);
    const err = await admin.getInstance('acme').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(err)).toMatch(/not found/i);
  });

  it('after a supervisor restart, the vendor and every still-registered tenant come back from SQLite', async () => {
    await admin.addRegistration({ id: 'globex', enrollSecretPath: join(tmp.dir, 'globex.secret') });
    const globexPid = (await healthy('globex')).pid!;
    expect(await stopSupervisor()).toBe(0);
    expect(alive(vendorPid)).toBe(false);
    expect(alive(globexPid)).toBe(false);
    const sockets = readdirSync(join(root(), 's')).filter((f) => !f.startsWith('.'));
    expect(sockets).toEqual([]);
    supervisor = startSupervisor();
    const vendor = await healthy('kolide');
    const globex = await healthy('globex');
    expect(vendor.pid).not.toBe(vendorPid);
    expect(globex.pid).not.toBe(globexPid);
    expect((await admin.listInstances()).map((i) => i.id).sort()).toEqual(['globex', 'kolide']);
  });
});
