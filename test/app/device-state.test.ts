/**
 * issue 15, end to end with a real supervisor (LauncherApp, stand-in
 * osqueryd processes, control API over mutual TLS, `launcher ctl`
 * in-process) against a real dev server and an "old region" capturing
 * server on 127.0.0.1:
 * - the backend sees the machine's real enrollment details, equal to a
 *   select through that instance;
 * - wrong_region is followed and the new device URL shows in `ctl get` and
 *   kolide_launcher_registrations;
 * - `ctl enroll` with an unreadable secret file fails with a clear message;
 * - a bad secret is a visible `failing` device state with the backend's
 *   answer; re-enrolling with the right secret (`ctl enroll --replace`)
 *   makes it `enrolled` and the vendor's osqueryd is never restarted.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DETAILS_SQL } from '../../extensions/kolide_grpc/index.js';
import { LauncherApp } from '../../src/app/launcher-app.js';
import { EXIT } from '../../src/cli/ctl-exit.js';
import { runCtl } from '../../src/cli/ctl-run.js';
import { configSchema } from '../../src/config/schema.js';
import { initCertificates } from '../../src/control/certs-init.js';
import { ControlClient } from '../../src/control/client.js';
import { startDevServer, type DevServer } from '../../src/devserver/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { rpcResult, startCaptureServer, type CaptureServer } from '../device/support.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

const repo = resolve(import.meta.dirname, '../..');
const tmp = shortTempDir('dst');
let dev: DevServer | undefined;
let old: CaptureServer | undefined;
let admin: ControlClient | undefined;

afterAll(async () => {
  admin?.close();
  await dev?.close();
  await old?.close();
  tmp.cleanup();
});

async function ctl(config: string, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCtl(['--config', config, ...argv], { stdout: (t) => (out += t), stderr: (t) => (err += t), env: {}, cwd: tmp.dir });
  return { code, out, err };
}

describe('device standing end to end (issue 15)', () => {
  it('details, wrong_region, unreadable secret, failing → re-enrolled, vendor untouched', async () => {
    dev = await startDevServer({
      tenants: [
        { name: 'kolide', secrets: ['s-kolide'] },
        { name: 'zed', secrets: ['s-zed'] },
      ],
    });
    // The configured server is an old region: every enrollment is sent on to the dev server.
    old = await startCaptureServer(rpcResult({ node_key: '', wrong_region: true, deployment_urls: { enrollment_url: dev.url } }));
    const listen = `unix://${join(tmp.dir, 'control.sock')}`;
    const certs = await initCertificates({ dir: join(tmp.dir, 'certs'), tenants: [], target: listen });
    const ctlConfig = join(certs.dir, 'ctl.json');
    const config = configSchema.parse({
      root_directory: join(tmp.dir, 'root'),
      osqueryd_path: join(repo, 'bin/osqueryd-sim'),
      device_server: { url: old.url, insecure_transport: true },
      registrations: [{ id: 'kolide', enroll_secret: 's-kolide' }],
      control: { enabled: true, listen, ca: certs.caCert, cert: certs.serverCert, key: certs.serverKey, roles: { admin: 'admin' } },
      log_buffer: { publish_interval_seconds: 0.5 },
      health: { interval_seconds: 1, startup_delay_seconds: 1, failures: 3 },
    });
    const app = new LauncherApp({ config, osquerydPath: config.osqueryd_path, logger: silentLogger(), signals: false });
    const running = app.run();
    try {
      await app.whenReady();
      admin = new ControlClient({
        target: listen,
        ca: certs.caCert,
        cert: join(certs.dir, 'admin.pem'),
        key: join(certs.dir, 'admin.key'),
      });
      const get = (id: string) => admin!.getInstance(id);
      expect(await admin.supports('device-state')).toBe(true);
      await waitFor(
        async () => (await get('kolide')).healthy && (await get('kolide')).device.state === 'enrolled',
        30_000,
        'vendor enrolled',
      );
      const vendorPid = (await get('kolide')).pid;
      expect(vendorPid).toBeGreaterThan(0);

      // wrong_region followed: the registration now talks to the dev server, and says so.
      expect((await get('kolide')).device_url).toBe(dev.url);
      const shown = await ctl(ctlConfig, 'get', 'kolide');
      expect(shown.out).toMatch(new RegExp(`device url\\s+${dev.url.replace(/[.]/g, '\\.')}`));
      expect(shown.out).toMatch(/device\s+enrolled/);
      const regRows = await app.runner.query(
        rid('kolide'),
        "select device_url, device_state from kolide_launcher_registrations where registration_id = 'kolide'",
      );
      expect(regRows).toEqual([{ device_url: dev.url, device_state: 'enrolled' }]);

      // Enrollment details: what the backend received is what this instance's osqueryd says.
      const sent = dev.nodes('kolide')[0]!.details as Record<string, string>;
      const [seen] = await app.runner.query(rid('kolide'), DETAILS_SQL);
      for (const k of ['os_version', 'os_name', 'osquery_version', 'hostname', 'hardware_uuid'] as const) {
        expect(sent[k], k).not.toBe('');
        expect(sent[k], k).toBe(seen![k]);
      }
      for (const k of ['os_build_id', 'hardware_vendor', 'hardware_model', 'hardware_serial'] as const) expect(sent[k], k).toBe(seen![k]);
      expect(sent).toMatchObject({ goos: 'linux', os_platform: 'linux' });

      // An unreadable secret file is refused at once, with what and where.
      const missing = join(tmp.dir, 'nonexistent.secret');
      const refused = await ctl(ctlConfig, 'enroll', 'zed', '--secret-file', missing);
      expect(refused.code).not.toBe(EXIT.ok);
      expect(refused.err).toContain(missing);
      expect((await ctl(ctlConfig, 'get', 'zed')).code).toBe(EXIT.notFound);

      // A wrong secret: visibly failing, with the backend's answer, while osqueryd itself is fine.
      const bad = join(tmp.dir, 'bad.secret');
      const good = join(tmp.dir, 'good.secret');
      writeFileSync(bad, 'not-the-secret\n');
      writeFileSync(good, 's-zed\n');
      expect((await ctl(ctlConfig, 'enroll', 'zed', '--secret-file', bad)).code).toBe(EXIT.ok);
      await waitFor(async () => (await get('zed')).device.state === 'failing', 30_000, 'zed failing');
      const failing = (await get('zed')).device;
      expect(failing.error).toMatch(/node_invalid.*enroll_secret_unknown/);
      expect(failing.since).toBeGreaterThan(0);
      expect((await ctl(ctlConfig, 'get', 'zed')).out).toMatch(/device\s+failing since .*node_invalid/);
      const health = await admin.health();
      expect(health.instances.find((i) => i.id === 'zed')?.device?.state).toBe('failing');
      expect((await ctl(ctlConfig, 'health')).out).toMatch(/zed .*failing/);
      const instRows = await app.runner.query(
        rid('kolide'),
        "select device_state, device_error from kolide_launcher_instances where registration_id = 'zed'",
      );
      expect(instRows[0]).toMatchObject({ device_state: 'failing', device_error: expect.stringMatching(/node_invalid/) });

      // Without --replace an existing id is refused; with it, zed is re-enrolled with the right secret.
      expect((await ctl(ctlConfig, 'enroll', 'zed', '--secret-file', good)).code).toBe(EXIT.alreadyExists);
      const zedPid = (await get('zed')).pid;
      const fixed = await ctl(ctlConfig, 'enroll', 'zed', '--secret-file', good, '--replace');
      expect(fixed.code, fixed.err).toBe(EXIT.ok);
      await waitFor(async () => (await get('zed')).device.state === 'enrolled', 30_000, 'zed enrolled');
      expect((await get('zed')).pid).not.toBe(zedPid);
      expect(
        (
          await app.runner.query(
            rid('kolide'),
            "select enroll_secret_path from kolide_launcher_registrations where registration_id = 'zed'",
          )
        )[0]!.enroll_secret_path,
      ).toBe(good);
      expect(dev.nodes('zed')).toHaveLength(1);
      expect((await get('kolide')).pid).toBe(vendorPid);
      expect((await get('kolide')).restarts).toBe(0);
    } finally {
      app.stop();
      await running;
    }
  });
});
