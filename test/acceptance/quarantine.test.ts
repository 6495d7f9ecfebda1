// Issue 16: query quarantine, end to end. A real supervisor process (`bin/launcher run`), real stand-in osqueryds
// (faults `crash_on_query` / `hang_on_query` scoped to the tenants acme and globex only), the real local device
// server, the real control API over mutual TLS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { shortTempDir, waitFor } from '../helpers/tmp.js';
import { writeSupervisorConfig } from '../helpers/supervisor-config.js';
import { startDevServer, type DevServer } from '../../src/devserver/index.js';
import { initCertificates } from '../../src/control/certs-init.js';
import { ControlClient } from '../../src/control/client.js';

const repo = resolve(import.meta.dirname, '../..');
const CRASH = 'crash_marker_q16';
const HANG = 'hang_marker_q16';
const CRASH_SQL = `select '${CRASH}' as boom`;
const VENDOR_QUERY = 'vendor_clock';
const VENDOR_INTERVAL = 2; // seconds
const QUERY_TIMEOUT_S = 8;

let tmp: ReturnType<typeof shortTempDir>;
let dev: DevServer;
let admin: ControlClient;
let acmeClient: ControlClient;
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
    env: {
      ...process.env,
      LAUNCHER_LOG_FORMAT: 'json',
      OSQUERYD_SIM_FAULTS: `crash_on_query=${CRASH},hang_on_query=${HANG},scope=/registrations/acme/|/registrations/globex/`,
    },
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

const recentOutput = () => output.split('\n').slice(-60).join('\n');

async function explain<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw new Error(`${(err as Error).message}\nsupervisor output:\n${recentOutput()}`);
  }
}

async function healthy(id: string, notPid?: number) {
  return explain(
    waitFor(
      async () => {
        const i = await admin.getInstance(id).catch(() => undefined);
        return i?.healthy && i.pid && i.pid !== notPid ? i : undefined;
      },
      120_000,
      `${id} healthy${notPid ? ` with a pid other than ${notPid}` : ''}`,
    ),
  );
}

/** The stand-in's per-instance query log (every SQL it executed, written before it runs). */
function queryLog(id: string): Array<{ t: number; source: string; name: string; sql: string }> {
  const file = join(root(), 'registrations', id, 'osquery.db.queries.log');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { t: number; source: string; name: string; sql: string });
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

function statusMessages(tenant: string): string[] {
  return dev
    .logs({ tenant, logType: 4 })
    .map((l) => (JSON.parse(l.data) as { m?: string }).m ?? '')
    .filter(Boolean);
}

beforeAll(async () => {
  tmp = shortTempDir('qua');
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
  const certs = await initCertificates({ dir: join(tmp.dir, 'certs'), tenants: ['acme', 'globex'] });
  const listen = `unix://${join(tmp.dir, 'ctl.sock')}`;
  const config = join(tmp.dir, 'launcher.yaml');
  writeSupervisorConfig(config, {
    repo,
    root: root(),
    deviceServerUrl: dev.url,
    registrations: ['kolide', 'acme', 'globex'].map((id) => ({ id, secretPath: join(tmp.dir, `${id}.secret`) })),
    listen,
    certs,
  });
  appendFileSync(config, `quarantine: {query_timeout_seconds: ${QUERY_TIMEOUT_S}, incidents: 2, window_hours: 24, ttl_days: 7}\n`);
  const client = (name: string) =>
    new ControlClient({ target: listen, ca: certs.caCert, cert: join(certs.dir, `${name}.pem`), key: join(certs.dir, `${name}.key`) });
  admin = client('admin');
  acmeClient = client('tenant-acme');
  supervisor = startSupervisor();
});

afterAll(async () => {
  admin?.close();
  acmeClient?.close();
  await stopSupervisor();
  await dev?.close();
  tmp?.cleanup();
});

// Real processes on a shared 2-core machine: generous bounds (they are bounds, not expectations).
describe('query quarantine', { timeout: 300_000 }, () => {
  let vendorPid = 0;
  let acmePid = 0;
  let globexPid = 0;
  let crashHash = '';

  it('starts the vendor and two tenants', async () => {
    vendorPid = (await healthy('kolide')).pid!;
    acmePid = (await healthy('acme')).pid!;
    globexPid = (await healthy('globex')).pid!;
    await explain(waitFor(() => vendorRuns().length >= 2, 60_000, 'vendor scheduled results delivered'));
    expect(await admin.listQuarantine()).toEqual([]);
  });

  it("a distributed query that crashes acme's osqueryd twice is quarantined; the third attempt never reaches it", async () => {
    for (let attempt = 1; attempt <= 2; attempt++) {
      const name = dev.addQuery('acme', CRASH_SQL);
      await explain(waitFor(() => queryLog('acme').some((q) => q.source === 'distributed' && q.name === name), 60_000, `${name} ran`));
      await explain(waitFor(() => !alive(acmePid), 30_000, `acme osqueryd ${acmePid} crashed`));
      acmePid = (await healthy('acme', acmePid)).pid!;
    }
    const listed = await explain(
      waitFor(
        async () => {
          const q = (await admin.listQuarantine('acme')).filter((e) => e.kind === 'distributed');
          return q.length > 0 ? q : undefined;
        },
        30_000,
        'acme distributed quarantine',
      ),
    );
    expect(listed).toHaveLength(1);
    expect(listed[0]!.sql).toBe(CRASH_SQL);
    expect(listed[0]!.incidents).toBe(2);
    crashHash = listed[0]!.sql_hash;
    // The scheduled query that ran before the crashes is not blamed (a distributed query was handed out after it).
    expect((await admin.listQuarantine('acme')).filter((e) => e.kind === 'scheduled')).toEqual([]);

    // The run history names the query.
    const history = await admin.history('acme');
    expect(history.some((r) => /quarantine: distributed query \S+ quarantined after 2 incidents/.test(r.error ?? ''))).toBe(true);

    const third = dev.addQuery('acme', CRASH_SQL);
    const result = await explain(
      waitFor(() => dev.results({ tenant: 'acme', queryName: third })[0], 60_000, 'failed result of the quarantined query'),
    );
    expect(result.status).not.toBe(0);
    expect(result.message).toMatch(/quarantined by osquery-launcher on registration acme: 2 incidents/);
    expect(queryLog('acme').some((q) => q.name === third)).toBe(false);
    expect((await admin.getInstance('acme')).pid).toBe(acmePid);
    expect(alive(acmePid)).toBe(true);
  });

  it('the same SQL runs fine on the vendor', async () => {
    const name = dev.addQuery('kolide', CRASH_SQL);
    const result = await explain(waitFor(() => dev.results({ tenant: 'kolide', queryName: name })[0], 60_000, 'vendor result'));
    expect(result.status).toBe(0);
    expect(result.rows).toEqual([{ boom: CRASH }]);
    expect((await admin.getInstance('kolide')).pid).toBe(vendorPid);
  });

  it('a tenant cannot list or release another registration’s quarantine', async () => {
    await expect(acmeClient.listQuarantine('globex')).rejects.toThrow(/permission|denied|not allowed/i);
    await expect(acmeClient.releaseQuarantine('globex', crashHash.slice(0, 12))).rejects.toThrow(/permission|denied|not allowed/i);
    // Without an id a tenant sees only its own entries.
    expect((await acmeClient.listQuarantine()).every((e) => e.registration_id === 'acme')).toBe(true);
  });

  it('release brings the distributed query back to osqueryd', async () => {
    const released = await admin.releaseQuarantine('acme', crashHash.slice(0, 12));
    expect(released.map((e) => e.sql)).toEqual([CRASH_SQL]);
    expect(await admin.listQuarantine('acme')).toEqual([]);
    const name = dev.addQuery('acme', CRASH_SQL);
    await explain(waitFor(() => queryLog('acme').some((q) => q.name === name), 60_000, 'released query reached osqueryd'));
    await explain(waitFor(() => !alive(acmePid), 30_000, 'acme crashed again'));
    acmePid = (await healthy('acme', acmePid)).pid!;
  });

  it('a scheduled query that crash-loops acme is removed from its config and the loop ends', async () => {
    dev.setConfig('acme', {
      schedule: {
        acme_uptime: { query: 'select total_seconds from uptime', interval: 2, snapshot: true },
        acme_boom: { query: CRASH_SQL, interval: 1 },
      },
    });
    await admin.restartInstance('acme');
    const entry = await explain(
      waitFor(
        async () => (await admin.listQuarantine('acme')).find((e) => e.kind === 'scheduled' && e.name === 'acme_boom'),
        150_000,
        'acme_boom quarantined',
      ),
    );
    expect(entry.incidents).toBe(2);
    // The loop ends by itself: one run that stays up, runs acme_uptime, and never starts acme_boom.
    const settled = await healthy('acme');
    const since = Date.now();
    await explain(
      waitFor(
        () => queryLog('acme').filter((q) => q.t > since && q.source === 'schedule' && q.name === 'acme_uptime').length >= 2,
        60_000,
        'acme schedule running after the quarantine',
      ),
    );
    const after = await admin.getInstance('acme');
    expect(after.pid).toBe(settled.pid);
    expect(after.restarts).toBe(settled.restarts);
    expect(queryLog('acme').some((q) => q.t > since && q.name === 'acme_boom')).toBe(false);
    await explain(
      waitFor(
        () => statusMessages('acme').some((m) => m.includes('scheduled query acme_boom is quarantined on registration acme')),
        60_000,
        'status log about acme_boom at the backend',
      ),
    );
    acmePid = after.pid!;
  });

  it('the vendor kept its pid and its schedule throughout', async () => {
    expect((await admin.getInstance('kolide')).pid).toBe(vendorPid);
    expect((await admin.getInstance('kolide')).restarts).toBe(0);
    const runs = vendorRuns();
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i]![0]).toBe(runs[i - 1]![0] + 1);
      expect(runs[i]![1] - runs[i - 1]![1]).toBeLessThanOrEqual(2 * VENDOR_INTERVAL);
    }
    expect(queryLog('kolide').some((q) => q.name === 'acme_boom')).toBe(false);
  });

  it('a distributed query that never returns is cut off at the deadline: only globex is replaced', async () => {
    const vendorBefore = (await admin.getInstance('kolide')).pid;
    const acmeBefore = (await admin.getInstance('acme')).pid;
    const name = dev.addQuery('globex', `select '${HANG}' as h`);
    await explain(waitFor(() => queryLog('globex').some((q) => q.name === name), 60_000, 'hanging query started'));
    await explain(waitFor(() => !alive(globexPid), 60_000, 'globex osqueryd replaced'));
    const globex = await healthy('globex', globexPid);
    expect(globex.pid).not.toBe(globexPid);
    const history = await admin.history('globex');
    const cut = history.find((r) => r.error?.includes(`got no result within ${QUERY_TIMEOUT_S} s`));
    expect(cut?.error).toContain(name);
    expect(cut?.error).toMatch(/quarantine: suspect distributed query \S+ \(incident 1 of 2\)/);
    expect((await admin.getInstance('kolide')).pid).toBe(vendorBefore);
    expect((await admin.getInstance('acme')).pid).toBe(acmeBefore);
    expect(alive(vendorPid)).toBe(true);
  });

  it('the quarantine is still there after a supervisor restart, and acme stays up', async () => {
    expect(await stopSupervisor()).toBe(0);
    supervisor = startSupervisor();
    const acme = await healthy('acme');
    await healthy('kolide');
    const entries = await admin.listQuarantine('acme');
    expect(entries.map((e) => `${e.kind}:${e.name}`)).toEqual(['scheduled:acme_boom']);
    const since = Date.now();
    await explain(
      waitFor(
        () => queryLog('acme').filter((q) => q.t > since && q.name === 'acme_uptime').length >= 2,
        60_000,
        'acme schedule after the restart',
      ),
    );
    expect(queryLog('acme').some((q) => q.t > since && q.name === 'acme_boom')).toBe(false);
    expect((await admin.getInstance('acme')).pid).toBe(acme.pid);
  });
  it('releasing the scheduled query restarts acme with it in the config; it crashes again and is quarantined again', async () => {
    const before = (await admin.getInstance('acme')).pid!;
    const since = Date.now();
    const released = await acmeClient.releaseQuarantine('acme', 'acme_boom');
    expect(released.map((e) => e.name)).toEqual(['acme_boom']);
    await explain(
      waitFor(() => queryLog('acme').some((q) => q.t > since && q.name === 'acme_boom'), 60_000, 'acme_boom back in the schedule'),
    );
    expect(alive(before)).toBe(false);
    await explain(
      waitFor(
        async () => (await admin.listQuarantine('acme')).find((e) => e.name === 'acme_boom' && e.quarantined_at > since),
        150_000,
        'acme_boom quarantined again',
      ),
    );
    await healthy('acme');
    expect((await admin.getInstance('kolide')).pid).toBeDefined();
  });
});
