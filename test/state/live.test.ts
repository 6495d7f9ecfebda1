// Issue 7: the state tables through real osqueryd stand-ins. One supervisor
// (LauncherApp, in this process) with the vendor `kolide` and tenant `acme`
// from the config and tenant `globex` enrolled at runtime through the control
// API; the local device server; the control API over mutual TLS. Every query
// goes control API → Runner → the registration's osqueryd-sim → its
// kolide_grpc extension's `generate`, as a real query would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { shortTempDir, waitFor } from '../helpers/tmp.js';
import { startDevServer, type DevServer } from '../../src/devserver/index.js';
import { initCertificates } from '../../src/control/certs-init.js';
import { ControlClient } from '../../src/control/client.js';
import { configSchema } from '../../src/config/schema.js';
import { LauncherApp } from '../../src/app/launcher-app.js';
import { ExtensionManagerClient } from '../../src/osquery/client.js';
import { instancePaths } from '../../src/runtime/instance/paths.js';
import { renderRow } from '../../src/state/table.js';
import { STATE_TABLES, instancesTable } from '../../src/state/tables.js';
import { QuarantineStore } from '../../src/store/quarantine.js';
import { launcherInfoTable } from '../../src/state/launcher-info.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

const repo = resolve(import.meta.dirname, '../..');
const TENANTS = ['kolide', 'acme', 'globex'] as const;

let tmp: ReturnType<typeof shortTempDir>;
let dev: DevServer;
let app: LauncherApp;
let running: Promise<void> | undefined;
let admin: ControlClient;
let acmeClient: ControlClient;
const logs: string[] = [];
const seenPids = new Set<number>();
let sampler: NodeJS.Timeout | undefined;
const secretPath = (t: string) => join(tmp.dir, `${t}.secret`);
const startedAt = Date.now();

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const recentLogs = () => logs.slice(-30).join('');

async function allHealthy(): Promise<void> {
  try {
    await waitFor(
      () =>
        TENANTS.every((id) => {
          const s = app.runner.statusOf(rid(id));
          return s.healthy && s.pid;
        }),
      45_000,
      'every instance healthy',
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nsupervisor log:\n${recentLogs()}`);
  }
}

beforeAll(async () => {
  tmp = shortTempDir('st');
  for (const t of TENANTS) writeFileSync(secretPath(t), `secret-${t}\n`);
  // A one-second scheduled query per tenant, so result logs reach the buffers.
  const config = (t: string) => JSON.stringify({ schedule: { [`${t}_time`]: { query: 'select unix_time from time', interval: 1 } } });
  dev = await startDevServer({ tenants: TENANTS.map((t) => ({ name: t, secrets: [`secret-${t}`], config: config(t) })) });
  const certs = await initCertificates({ dir: join(tmp.dir, 'certs'), tenants: ['acme'] });
  const roles = JSON.parse(readFileSync(certs.rolesFile, 'utf8')) as Record<string, string>;
  const listen = `unix://${join(tmp.dir, 'ctl.sock')}`;
  const cfg = configSchema.parse({
    root_directory: join(tmp.dir, 'root'),
    osqueryd_path: join(repo, 'bin/osqueryd-sim'),
    device_server: { url: dev.url, insecure_transport: true },
    registrations: [
      { id: 'kolide', enroll_secret_path: secretPath('kolide') },
      { id: 'acme', enroll_secret_path: secretPath('acme'), limits: { memory_mb: 300 } },
    ],
    control: { listen, ca: certs.caCert, cert: certs.serverCert, key: certs.serverKey, roles },
    // Logs stay buffered for the whole test: the buffer tables have something to show.
    log_buffer: { publish_interval_seconds: 3600 },
    health: { interval_seconds: 0.5, startup_delay_seconds: 0.3, failures: 3 },
  });
  const logger = pino({ level: 'info' }, { write: (line: string) => void (logs.length < 5_000 && logs.push(line)) });
  app = new LauncherApp({
    config: cfg,
    osquerydPath: cfg.osqueryd_path,
    logger,
    signals: false,
    extension: { distributedStartupWindowMs: 0 },
    runner: {
      // Generous call timeouts: this suite shares two cores with others.
      timings: { healthTimeoutMs: 3_000, callTimeoutMs: 3_000, managerPingIntervalMs: 500, stopGraceMs: 2_000 },
      flagTimings: { extensionsInterval: 1, extensionsTimeout: 5, distributedInterval: 1, configRefresh: 60 },
      backoff: { initialMs: 100, maxMs: 2_000, stableAfterMs: 10_000 },
      limits: { cgroup: 'off' },
    },
  });
  running = app.run();
  running.catch(() => undefined);
  sampler = setInterval(() => {
    for (const s of app.runner.status()) if (s.pid) seenPids.add(s.pid);
  }, 20);
  await app.whenReady();
  const client = (name: string) =>
    new ControlClient({ target: listen, ca: certs.caCert, cert: join(certs.dir, `${name}.pem`), key: join(certs.dir, `${name}.key`) });
  admin = client('admin');
  acmeClient = client('tenant-acme');
  await admin.addRegistration({ id: 'globex', enrollSecretPath: secretPath('globex') });
  await allHealthy();
  await waitFor(() => TENANTS.every((t) => dev.nodes(t).length === 1), 20_000, 'every tenant enrolled');
  // One quarantined query per registration (issue 16), so kolide_launcher_quarantine has rows to scope.
  const quarantine = new QuarantineStore(app.db);
  for (const id of TENANTS)
    await quarantine.recordIncident(id, { kind: 'scheduled', name: `${id}_q`, sql: `select '${id}'` }, 'test', {
      incidents: 1,
      windowMs: 3600_000,
      ttlMs: 3600_000,
    });
});

afterAll(async () => {
  if (sampler) clearInterval(sampler);
  admin?.close();
  acmeClient?.close();
  app?.stop('test done');
  await running;
  await dev?.close();
  tmp?.cleanup();
  // Every osqueryd this suite saw is gone.
  expect([...seenPids].filter(alive)).toEqual([]);
});

describe('state tables through osqueryd stand-ins', () => {
  it('the vendor instance lists every instance, with the pids and health the control API and /proc report', async () => {
    const rows = await admin.query('kolide', 'select * from kolide_launcher_instances');
    const api = await admin.listInstances();
    expect(rows.map((r) => r.registration_id).sort()).toEqual(['acme', 'globex', 'kolide']);
    for (const row of rows) {
      const id = row.registration_id!;
      const fromApi = api.find((i) => i.id === id)!;
      const status = app.runner.statusOf(rid(id));
      expect(row.pid).toBe(String(status.pid));
      expect(row.state).toBe('running');
      expect(row.healthy).toBe('1');
      // The control API sends the same objects the table renders.
      const rendered = renderRow(instancesTable, fromApi);
      for (const col of [
        'registration_id',
        'state',
        'pid',
        'run_id',
        'started_at',
        'connected_at',
        'healthy',
        'restarts',
        'limit_mode',
        'memory_limit_mb',
        'osqueryd_path',
        'osqueryd_version',
      ]) {
        expect(row[col], `${id}.${col}`).toBe(rendered[col]);
      }
      // The pid is a live osqueryd of this registration (its database path names it).
      const cmdline = readFileSync(`/proc/${status.pid}/cmdline`, 'utf8').split('\0');
      expect(cmdline.some((a) => a.endsWith('osqueryd-sim'))).toBe(true);
      expect(cmdline.some((a) => a.includes(join('registrations', id, 'osquery.db')))).toBe(true);
      expect(readFileSync(`/proc/${status.pid}/stat`, 'utf8')).not.toMatch(/^\d+ \(.*\) [ZX] /);
    }
    expect(rows.find((r) => r.registration_id === 'acme')!.memory_limit_mb).toBe('300');
  });

  it("tenant acme's instance lists only acme, whatever it asks for", async () => {
    const own = app.runner.statusOf(rid('acme'));
    for (const client of [admin, acmeClient]) {
      expect(await client.query('acme', 'select registration_id, pid, healthy from kolide_launcher_instances')).toEqual([
        { registration_id: 'acme', pid: String(own.pid), healthy: '1' },
      ]);
      expect(await client.query('acme', "select * from kolide_launcher_instances where registration_id = 'kolide'")).toEqual([]);
    }
  });

  it('getQueryColumns on the instance reports the declared column names and types of every state table', async () => {
    const s = app.runner.statusOf(rid('kolide'));
    const socket = instancePaths(app.runner.root, rid('kolide'), s.run_id!, app.runner.socketDirectory!).socketPath;
    const manager = new ExtensionManagerClient(socket, { timeoutMs: 5_000 });
    try {
      for (const table of [...STATE_TABLES, launcherInfoTable]) {
        const cols = await manager.getQueryColumns(`select * from ${table.name}`);
        expect(cols, table.name).toEqual(table.columns.map((c) => ({ name: c.name, type: c.type })));
      }
    } finally {
      manager.close();
    }
  });

  it('the registrations table shows each registration as configured or enrolled', async () => {
    const rows = await admin.query('kolide', 'select * from kolide_launcher_registrations');
    const by = Object.fromEntries(rows.map((r) => [r.registration_id, r]));
    expect(Object.keys(by).sort()).toEqual(['acme', 'globex', 'kolide']);
    expect(by.kolide).toMatchObject({
      origin: 'config',
      enroll_secret_source: 'file',
      enroll_secret_path: secretPath('kolide'),
      enrolled: '1',
      disabled: '0',
    });
    expect(by.acme).toMatchObject({ origin: 'config', memory_limit_mb: '300', cpu_limit_percent: '', enrolled: '1' });
    expect(by.globex).toMatchObject({ origin: 'runtime', enroll_secret_source: 'file', enrolled: '1' });
    for (const r of rows) {
      expect(Number(r.created_at)).toBeGreaterThanOrEqual(Math.floor(startedAt / 1000) - 1);
      expect(Number(r.created_at)).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
      expect(JSON.stringify(r)).not.toContain('secret-'); // secrets are never shown
    }
  });

  it('the log-buffer table shows the buffered logs of each registration', async () => {
    const resultRow = async () =>
      (
        await admin.query('kolide', "select * from kolide_launcher_log_buffers where registration_id = 'kolide' and log_type = 'result'")
      )[0];
    const row = await waitFor(
      async () => {
        const r = await resultRow();
        return r && Number(r.count) > 0 ? r : undefined;
      },
      20_000,
      "kolide's scheduled results buffered",
    );
    expect(Number(row.bytes)).toBeGreaterThan(Number(row.count) * 20);
    expect(row.dropped).toBe('0');
    expect(Number(row.oldest_age_seconds)).toBeGreaterThanOrEqual(0);
    const all = await admin.query('kolide', 'select registration_id, log_type from kolide_launcher_log_buffers');
    expect(all.map((r) => `${r.registration_id}/${r.log_type}`).sort()).toEqual(
      TENANTS.flatMap((t) => [`${t}/result`, `${t}/status`]).sort(),
    );
    // The instances table counts the same buffer (it only grows: publication is off).
    const [inst] = await admin.query('kolide', "select buffered_results from kolide_launcher_instances where registration_id = 'kolide'");
    expect(Number(inst!.buffered_results)).toBeGreaterThanOrEqual(Number(row.count));
  });

  it("a tenant reads none of another tenant's registrations, buffers or history", async () => {
    for (const table of STATE_TABLES) {
      if (!table.columns.some((c) => c.name === 'registration_id')) {
        // Host-level rows (kolide_launcher_checkups, issue 18): the vendor's only.
        expect(await acmeClient.query('acme', `select * from ${table.name}`), table.name).toEqual([]);
        continue;
      }
      const rows = await acmeClient.query('acme', `select registration_id from ${table.name}`);
      expect(rows.length, table.name).toBeGreaterThan(0);
      expect(new Set(rows.map((r) => r.registration_id)), table.name).toEqual(new Set(['acme']));
      for (const other of ['kolide', 'globex']) {
        expect(
          await acmeClient.query('acme', `select * from ${table.name} where registration_id = '${other}'`),
          `${table.name} ${other}`,
        ).toEqual([]);
      }
    }
    // kolide_launcher_info is each instance's own.
    const [acmeInfo] = await acmeClient.query('acme', 'select enrollment_id, identifier from kolide_launcher_info');
    const [vendorInfo] = await admin.query('kolide', 'select enrollment_id, identifier from kolide_launcher_info');
    expect(acmeInfo!.enrollment_id).toBe('acme');
    expect(vendorInfo!.enrollment_id).toBe('kolide');
    expect(acmeInfo!.identifier).toMatch(/^[0-9a-f-]{36}$/);
    expect(acmeInfo!.identifier).not.toBe(vendorInfo!.identifier);
  });

  it('after a kill -9 of an osqueryd, the history shows the killed run (SIGKILL) and the new run', async () => {
    const before = app.runner.statusOf(rid('acme'));
    const vendorPid = app.runner.statusOf(rid('kolide')).pid;
    process.kill(before.pid!, 'SIGKILL');
    const after = await waitFor(
      () => {
        const s = app.runner.statusOf(rid('acme'));
        return s.healthy && s.pid && s.pid !== before.pid && s.run_id !== before.run_id ? s : undefined;
      },
      30_000,
      'acme back with a new run',
    );
    expect(alive(before.pid!)).toBe(false);

    const rows = await acmeClient.query('acme', 'select * from kolide_launcher_osquery_instance_history');
    expect(rows[0]).toMatchObject({
      registration_id: 'acme',
      enrollment_id: 'acme',
      instance_run_id: after.run_id,
      pid: String(after.pid),
      exit_time: '',
    });
    const killed = rows.find((r) => r.instance_run_id === before.run_id);
    expect(killed).toMatchObject({ pid: String(before.pid), signal: 'SIGKILL' });
    expect(Date.parse(killed!.exit_time!)).toBeGreaterThanOrEqual(Date.parse(killed!.start_time!));
    expect(new Set(rows.map((r) => r.registration_id))).toEqual(new Set(['acme']));
    // The control API's history is the same runs, in the same order.
    expect((await admin.history('acme')).map((r) => r.run_id)).toEqual(rows.map((r) => r.instance_run_id));
    // The vendor sees it too; the vendor's own instance was not touched.
    const seen = await admin.query(
      'kolide',
      `select signal from kolide_launcher_osquery_instance_history where registration_id = 'acme' and instance_run_id = '${before.run_id}'`,
    );
    expect(seen).toEqual([{ signal: 'SIGKILL' }]);
    const [acmeRow] = await admin.query('kolide', "select restarts, pid from kolide_launcher_instances where registration_id = 'acme'");
    expect(acmeRow).toEqual({ restarts: String(app.runner.statusOf(rid('acme')).restarts), pid: String(after.pid) });
    expect(Number(acmeRow!.restarts)).toBeGreaterThanOrEqual(1);
    expect(app.runner.statusOf(rid('kolide')).pid).toBe(vendorPid);
  });
});
