// Issue 22: through the whole supervisor (LauncherApp, control API over mutual
// TLS, osqueryd stand-ins as root): tenant `acme`'s SQL cannot read the
// supervisor's database or the control API's private key, the vendor's can;
// `ctl get` and kolide_launcher_instances show the isolation in force.
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
import { instanceDetails } from '../../src/cli/ctl-format.js';
import { isolationUnavailableReason } from '../../src/runtime/instance/isolation.js';
import { isAlive } from '../runtime/helpers.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

const repo = resolve(import.meta.dirname, '../..');
const canIsolate = process.platform === 'linux' && isolationUnavailableReason() === undefined;

let tmp: ReturnType<typeof shortTempDir>;
let dev: DevServer;
let app: LauncherApp;
let running: Promise<void> | undefined;
let admin: ControlClient;
let acme: ControlClient;
let root: string;
let serverKey: string;
const seenPids = new Set<number>();
let sampler: NodeJS.Timeout | undefined;
const logs: string[] = [];

describe.runIf(canIsolate)('tenant filesystem isolation through the supervisor', () => {
  beforeAll(async () => {
    tmp = shortTempDir('iso');
    root = join(tmp.dir, 'root');
    const ids = ['kolide', 'acme'];
    for (const t of ids) writeFileSync(join(tmp.dir, `${t}.secret`), `secret-${t}\n`);
    writeFileSync(join(tmp.dir, 'globex.secret'), 'secret-globex\n');
    dev = await startDevServer({ tenants: [...ids, 'globex'].map((t) => ({ name: t, secrets: [`secret-${t}`] })) });
    // The control API's keys inside the supervisor's root, as a packaged install may keep them.
    const certs = await initCertificates({ dir: join(root, 'control'), tenants: ['acme'] });
    serverKey = certs.serverKey;
    const roles = JSON.parse(readFileSync(certs.rolesFile, 'utf8')) as Record<string, string>;
    const listen = `unix://${join(tmp.dir, 'ctl.sock')}`;
    const cfg = configSchema.parse({
      root_directory: root,
      osqueryd_path: join(repo, 'bin/osqueryd-sim'),
      device_server: { url: dev.url, insecure_transport: true },
      registrations: ids.map((id) => ({ id, enroll_secret_path: join(tmp.dir, `${id}.secret`) })),
      control: { listen, ca: certs.caCert, cert: certs.serverCert, key: certs.serverKey, roles },
    });
    const logger = pino({ level: 'info' }, { write: (line: string) => void (logs.length < 5_000 && logs.push(line)) });
    app = new LauncherApp({
      config: cfg,
      osquerydPath: cfg.osqueryd_path,
      logger,
      signals: false,
      runner: {
        timings: { callTimeoutMs: 3_000, stopGraceMs: 2_000 },
        flagTimings: { extensionsInterval: 1, extensionsTimeout: 5 },
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
    acme = client('tenant-acme');
    await waitFor(
      () => ids.every((id) => app.runner.statusOf(rid(id)).healthy),
      45_000,
      `every instance healthy\n${logs.slice(-20).join('')}`,
    );
  });

  afterAll(async () => {
    if (sampler) clearInterval(sampler);
    admin?.close();
    acme?.close();
    app?.stop('test done');
    await running;
    await dev?.close();
    tmp?.cleanup();
    expect([...seenPids].filter(isAlive)).toEqual([]);
  });

  it('acme cannot hash the control key or see launcher.sqlite or the registrations; the vendor can', async () => {
    const key = `select sha256 from hash where path = '${serverKey}'`;
    const db = `select path from file where path = '${join(root, 'launcher.sqlite')}'`;
    const regs = `select path from file where directory = '${join(root, 'registrations')}'`;
    expect(await admin.query('kolide', key)).toHaveLength(1);
    expect(await admin.query('kolide', db)).toHaveLength(1);
    expect((await admin.query('kolide', regs)).map((r) => r.path).sort()).toEqual([
      join(root, 'registrations', 'acme'),
      join(root, 'registrations', 'kolide'),
    ]);
    // With acme's own certificate, as a tenant would.
    expect(await acme.query('acme', key)).toEqual([]);
    expect(await acme.query('acme', db)).toEqual([]);
    expect((await acme.query('acme', regs)).map((r) => r.path)).toEqual([join(root, 'registrations', 'acme')]);
    expect(await acme.query('acme', `select path from file where path = '/etc/os-release'`)).toHaveLength(1);
    await expect(acme.query('acme', `select * from curl where url = '${dev.url}'`)).rejects.toThrow(/no such table: curl/);
  });

  it('AddRegistration carries isolation settings: a denylist of its own, and a bad mode is refused naming the field', async () => {
    await expect(
      admin.addRegistration({ id: 'globex', enrollSecretPath: join(tmp.dir, 'globex.secret'), isolation: { mode: 'chroot' } }),
    ).rejects.toThrow(/isolation\.mode: must be one of filesystem, none/);
    await admin.addRegistration({
      id: 'globex',
      enrollSecretPath: join(tmp.dir, 'globex.secret'),
      isolation: { disable_tables: ['hash'] },
    });
    await waitFor(() => app.runner.statusOf(rid('globex')).healthy, 45_000, 'globex healthy');
    expect((await admin.getInstance('globex')).isolation).toEqual({ mode: 'filesystem', reason: null, disabled_tables: 'hash' });
    await expect(admin.query('globex', `select md5 from hash where path = '/etc/os-release'`)).rejects.toThrow(/no such table: hash/);
    // Its own list replaces the default list; the filesystem isolation stays.
    expect(await admin.query('globex', `select path from file where path = '${join(root, 'launcher.sqlite')}'`)).toEqual([]);
    // Tenant to tenant: acme, with its own certificate, cannot walk globex's /proc/<pid>/root into its view; the vendor can.
    const globexPid = app.runner.statusOf(rid('globex')).pid!;
    const through = `select path from file where directory = '/proc/${globexPid}/root${join(root, 'registrations', 'globex')}'`;
    expect((await admin.query('kolide', through)).length).toBeGreaterThan(0);
    expect(await acme.query('acme', through)).toEqual([]);
    expect(await acme.query('acme', `select sha256 from hash where path = '/proc/${globexPid}/root/etc/os-release'`)).toEqual([]);
    await admin.removeRegistration('globex');
  });

  it('ctl get and kolide_launcher_instances show the isolation in force', async () => {
    const info = await admin.getInstance('acme');
    expect(info.isolation).toEqual({ mode: 'filesystem', reason: null, disabled_tables: 'curl,curl_certificate,carves' });
    expect(instanceDetails(info)).toMatch(/isolation\s+filesystem \(disabled tables: curl,curl_certificate,carves\)/);
    expect((await admin.getInstance('kolide')).isolation.mode).toBe('none');
    const rows = await admin.query(
      'kolide',
      'select registration_id, isolation, isolation_reason, disabled_tables from kolide_launcher_instances order by registration_id',
    );
    expect(rows).toEqual([
      { registration_id: 'acme', isolation: 'filesystem', isolation_reason: '', disabled_tables: 'curl,curl_certificate,carves' },
      { registration_id: 'kolide', isolation: 'none', isolation_reason: '', disabled_tables: '' },
    ]);
  });
});
