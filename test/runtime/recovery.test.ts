// Recovery after a crash (issue 14) and what status says meanwhile (issue 13).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client.js';
import { controlCerts } from '../../bench/reliability/launcher-process.js';
import { AppHarness } from '../faults/support/app-harness.js';
import { dumpLogs, startRunner, type Harness } from './harness.js';
import { simAvailable, waitFor } from './helpers.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

let h: Harness | undefined;
let app: AppHarness | undefined;
const cleanups: Array<() => void> = [];
afterEach(async (ctx) => {
  const failed = ctx.task.result?.state === 'fail';
  dumpLogs(h, failed);
  if (failed && app) process.stderr.write(app.logTail(150));
  const leaked = (await h?.stop()) ?? [];
  const report = await app?.stop();
  h = undefined;
  app = undefined;
  while (cleanups.length) cleanups.pop()!();
  expect(leaked).toEqual([]);
  expect(report?.leaked ?? []).toEqual([]);
});

type LogRecord = Record<string, unknown>;
const records = (logs: string[]): LogRecord[] => logs.map((l) => JSON.parse(l) as LogRecord);

describe.runIf(simAvailable())('recovery', () => {
  // issue 14: ending a run whose osqueryd died called deregisterExtension on the dead manager (up to 2 s), and the
  // first restart of a stable instance waited the full backoff. The killed run must skip the call, and the restart
  // must use the quick delay, not the growing series (initialMs is huge here so the difference is unmistakable).
  it('a kill -9 of a stable instance skips deregistration and restarts with the quick delay; again after it was stable again', async () => {
    h = await startRunner({ backoff: { quickRestartMs: 50, initialMs: 60_000, maxMs: 60_000, stableAfterMs: 1_500, jitter: 0 } });
    const { runner } = h;
    await runner.add({ id: 'tenant' });
    const first = await runner.waitHealthy(rid('tenant'), 20_000);
    process.kill(first.pid!, 'SIGKILL');
    const second = await waitFor('tenant back after the first kill', () => {
      const s = h!.status('tenant');
      return s.healthy && s.run_id !== first.run_id ? s : undefined;
    });
    // Stable again: the supervisor forgets the failure once the run stayed up stableAfterMs.
    await waitFor('failure count cleared by a stable run', () => h!.status('tenant').consecutive_failures === 0, 10_000);
    process.kill(second.pid!, 'SIGKILL');
    const third = await waitFor('tenant back after the second kill', () => {
      const s = h!.status('tenant');
      return s.healthy && s.run_id !== second.run_id ? s : undefined;
    });
    expect(third.recent_delays_ms).toEqual([50, 50]);

    const logs = records(h.logs);
    for (const run of [first.run_id, second.run_id]) {
      const ofRun = logs.filter((r) => r.run_id === run);
      const msgs = ofRun.map((r) => r.msg);
      expect(msgs, `run ${run}: deregistration skipped`).toContain('deregister skipped: manager gone');
      expect(msgs, `run ${run}: no deregistration attempted on the dead manager`).not.toContain('deregistering extension');
      expect(msgs).not.toContain('deregister failed (manager may be gone)');
      // Skipped before the run was declared over.
      expect(msgs.indexOf('deregister skipped: manager gone')).toBeLessThan(msgs.lastIndexOf('instance failed'));
    }
  });

  it('a clean stop deregisters from the live manager', async () => {
    h = await startRunner();
    await h.runner.add({ id: 'tenant' });
    const st = await h.runner.waitHealthy(rid('tenant'), 20_000);
    await h.runner.remove(rid('tenant'));
    const msgs = records(h.logs)
      .filter((r) => r.run_id === st.run_id)
      .map((r) => r.msg);
    expect(msgs).toContain('deregistering extension');
    expect(msgs).not.toContain('deregister skipped: manager gone');
  });

  // issue 13: `ctl get` and `ctl list` showed the dead process's pid while the instance waited in backoff.
  it('the control API shows no pid while an instance is in backoff after a crash', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rc-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { certs, roles } = await controlCerts(dir);
    const listen = `unix://${join(dir, 'c.sock')}`;
    app = await AppHarness.start({
      registrations: ['kolide', 'acme'],
      // A long backoff so the window is certain: the crash below comes after the quick restart was used.
      runner: { backoff: { quickRestartMs: 60_000, initialMs: 60_000, maxMs: 60_000, stableAfterMs: 600_000 } },
      config: { control: { enabled: true, listen, ca: certs.caCert, cert: certs.serverCert, key: certs.serverKey, roles } },
    });
    const client = new ControlClient({
      target: listen,
      ca: certs.caCert,
      cert: join(certs.dir, 'admin.pem'),
      key: join(certs.dir, 'admin.key'),
      callTimeoutMs: 15_000,
    });
    cleanups.push(() => client.close());
    const running = await app.waitHealthy('acme');
    const before = await client.getInstance('acme');
    expect(before.pid).toBe(running.pid);
    process.kill(running.pid!, 'SIGKILL');
    await waitFor('acme in backoff', () => app!.status('acme').state === 'backoff', 10_000);
    const got = await client.getInstance('acme');
    expect(got.state).toBe('backoff');
    expect(got.pid ?? null).toBeNull();
    const listed = (await client.listInstances()).find((i) => i.id === 'acme')!;
    expect(listed.state).toBe('backoff');
    expect(listed.pid ?? null).toBeNull();
    // The vendor keeps its live pid, and the history still names the dead run's pid.
    expect((await client.getInstance('kolide')).pid).toBe(app.status('kolide').pid);
    expect((await client.history('acme', 5)).find((r) => r.run_id === running.run_id)?.pid).toBe(running.pid);
  });
});
