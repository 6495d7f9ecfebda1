// Issue 5: `disable_device` from the device server stops that registration only,
// is visible in status, and survives a supervisor restart.
import { afterAll, describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { shortTempDir, waitFor } from '../helpers/tmp.js';
import { startDevServer, type DevServer } from '../../src/devserver/index.js';
import { configSchema } from '../../src/config/schema.js';
import { LauncherApp } from '../../src/app/launcher-app.js';
import { silentLogger } from '../../src/log/logger.js';

const repo = resolve(import.meta.dirname, '../..');
const tmp = shortTempDir('dis');
let dev: DevServer;

function app(): LauncherApp {
  const config = configSchema.parse({
    root_directory: join(tmp.dir, 'root'),
    osqueryd_path: join(repo, 'bin/osqueryd-sim'),
    device_server: { url: dev.url, insecure_transport: true },
    registrations: ['kolide', 'acme'].map((id) => ({ id, enroll_secret: `s-${id}` })),
    control: { enabled: false },
    log_buffer: { publish_interval_seconds: 0.2 },
    health: { interval_seconds: 1, startup_delay_seconds: 1, failures: 3 },
    distributed_forwarding_interval_seconds: 1,
  });
  return new LauncherApp({
    config,
    osquerydPath: config.osqueryd_path,
    logger: silentLogger(),
    signals: false,
    extension: { distributedStartupWindowMs: 0 },
  });
}

afterAll(async () => {
  await dev?.close();
  tmp.cleanup();
});

describe('disable_device', () => {
  it('stops only that registration, keeps it visible as disabled, and across a restart', async () => {
    dev = await startDevServer({ tenants: ['kolide', 'acme'].map((t) => ({ name: t, secrets: [`s-${t}`] })) });
    const first = app();
    const running = first.run();
    try {
      const status = (id: string) => first.state.instances([id])[0];
      await waitFor(() => status('kolide')?.healthy && status('acme')?.healthy, 30_000, 'both healthy');
      const vendorPid = status('kolide')!.pid;
      const acmePid = status('acme')!.pid!;
      dev.setDisabled('acme', true);
      await waitFor(() => status('acme')?.state === 'disabled', 30_000, 'acme disabled');
      expect(status('acme')!.last_error).toMatch(/disable_device/);
      await waitFor(
        () => {
          try {
            process.kill(acmePid, 0);
            return false;
          } catch {
            return true;
          }
        },
        15_000,
        'acme osqueryd stopped',
      );
      expect(status('kolide')!.pid).toBe(vendorPid);
      expect(first.state.registrations(['acme'])[0]!.disabled).toBe(true);
    } finally {
      first.stop();
      await running;
    }
    const second = app();
    const again = second.run();
    try {
      await waitFor(() => second.state.instances(['kolide'])[0]?.healthy, 30_000, 'vendor back');
      expect(second.state.instances(['acme'])[0]!.state).toBe('disabled');
      expect(second.state.instances(['acme'])[0]!.pid).toBeNull();
    } finally {
      second.stop();
      await again;
    }
  });
});
