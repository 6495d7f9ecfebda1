// Issue 9 (faults): the extension server's socket (`<manager socket>.<uuid>`)
// deleted under a running instance. Our server keeps listening on an unlinked
// inode nobody can reach: osqueryd's extension watcher finds the path gone and
// drops the extension (its tables, config and logger plugins), and our health
// check can no longer ping it. The supervisor must notice and repair the
// instance, and queries through the extension's tables must work again.
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { recordFigures } from '../../bench/reliability/figures.js';
import { extensionSocket } from '../../bench/reliability/log-traffic.js';
import { isAlive } from '../../bench/reliability/procfs.js';
import { waitFor } from '../../bench/reliability/wait.js';
import { AppHarness } from './support/app-harness.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

let h: AppHarness | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && h) process.stderr.write(`${h.logTail(200)}\n`);
  const report = await h?.stop();
  h = undefined;
  expect(report?.leaked ?? [], 'osqueryd processes alive after the app stopped').toEqual([]);
  expect(report?.socketFiles ?? [], 'files left in the socket directory').toEqual([]);
});

describe('extension socket deleted under a running instance', () => {
  it('is detected and repaired; the extension tables answer again; the other instance is untouched', async () => {
    h = await AppHarness.start({ registrations: ['kolide', 'acme'] });
    const hh = h;
    const vendor = await hh.waitHealthy('kolide');
    const before = await hh.waitHealthy('acme');
    // Fully started, not only registered: osqueryd activates the config, logger and distributed
    // plugins after our extension registers (a socket gone during that makes osqueryd exit 78,
    // a different fault). A distributed query answered means its last start-up step is done.
    const ready = hh.dev.addQuery('acme', "select 'up' as state");
    await waitFor('acme answering distributed queries', () => hh.dev.results({ tenant: 'acme', queryName: ready }).length > 0, {
      timeoutMs: 30_000,
    });
    expect(hh.status('acme').run_id).toBe(before.run_id);
    const info = 'select * from kolide_launcher_info';
    expect(await hh.app.runner.query(rid('acme'), info, 10_000)).toHaveLength(1);

    const socket = await waitFor('acme extension socket', () => extensionSocket(hh.socketDir, before.run_id!), { timeoutMs: 5_000 });
    const uuid = socket.slice(socket.lastIndexOf('.') + 1);
    const t0 = Date.now();
    rmSync(socket);

    const after = await hh.waitHealthy('acme', 30_000, (s) => s.run_id !== before.run_id);
    const repairedMs = Date.now() - t0;
    const [current, broken] = hh.app.runner.history(rid('acme'), 2);
    expect(current!.runId).toBe(after.run_id);
    expect(broken).toMatchObject({ runId: before.run_id, pid: before.pid });
    // Our side noticed: the health check could not ping the extension, or osqueryd no longer listed it.
    expect(broken!.error).toMatch(/health check failed \d+ times in a row; last: .*(does not answer ping|no longer lists extension)/);
    expect(isAlive(before.pid!)).toBe(false);

    // osqueryd's own watcher saw the extension go (its log line, relayed through the run's output).
    const watcherNoticed = hh.logs.some((l) => l.includes(before.run_id!) && l.includes(`Extension UUID ${uuid} has gone away`));

    // Repaired: the extension's own table and a state table answer through the new osqueryd.
    const rows = await hh.app.runner.query(rid('acme'), info, 10_000);
    expect(rows).toHaveLength(1);
    const regs = await hh.app.runner.query(rid('acme'), 'select registration_id from kolide_launcher_registrations', 10_000);
    expect(regs).toEqual([{ registration_id: 'acme' }]);
    // The new run's extension socket exists and the old one's files are gone.
    expect(extensionSocket(hh.socketDir, after.run_id!)).toBeDefined();
    expect(hh.socketFiles().filter((f) => f.startsWith(before.run_id!.slice(-12).toLowerCase()))).toEqual([]);

    // The vendor instance never restarted.
    expect(hh.status('kolide')).toMatchObject({ pid: vendor.pid, run_id: vendor.run_id, restarts: 0 });
    expect(after.restarts).toBe(1);

    recordFigures('extension-socket-deleted', {
      detected_by: broken!.error?.includes('no longer lists') ? 'osqueryd dropped the extension (extensions list)' : 'health check ping',
      osqueryd_watcher_noticed: watcherNoticed,
      repaired_ms: repairedMs,
      queries_after_repair: 'ok',
    });
  }, 120_000);
});
