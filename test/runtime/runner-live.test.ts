// Issue 4: 0..n instances added and removed live against the osqueryd stand-in.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { instancePaths } from '../../src/runtime/instance/paths.js';
import { runFiles } from '../../src/runtime/instance/run-files.js';
import { Runner } from '../../src/runtime/runner.js';
import { testExtensionFactory } from './fixtures/test-extension.mjs';
import { dumpLogs, startRunner, type Harness } from './harness.js';
import { isAlive, osquerydPath, simAvailable, tempRoot, waitFor } from './helpers.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

let h: Harness | undefined;
afterEach(async (ctx) => {
  dumpLogs(h, ctx.task.result?.state === 'fail');
  const leaked = (await h?.stop()) ?? [];
  h = undefined;
  expect(leaked, 'osqueryd processes left alive').toEqual([]);
});

beforeAll(() => {
  if (!simAvailable()) throw new Error('dist/src/sim/main.js is missing: run `npx tsc -p .` once the stand-in exists');
});

/** Query `id` in a loop until stopped; counts successes and keeps failures. */
function queryLoop(hh: Harness, id: string) {
  let stop = false;
  const stats = { ok: 0, failures: [] as string[] };
  const done = (async () => {
    while (!stop) {
      try {
        await hh.runner.query(rid(id), 'select 1 as one', 5_000);
        stats.ok += 1;
      } catch (err) {
        stats.failures.push((err as Error).message);
      }
    }
  })();
  return {
    stats,
    stop: async () => {
      stop = true;
      await done;
    },
  };
}

describe('Runner with live add/remove/restart', () => {
  it('starts with 0 instances, adds two, adds a third while they serve queries, removes one, restarts one', async () => {
    h = await startRunner();
    const { runner } = h;
    expect(runner.status()).toEqual([]);
    expect(runner.healthy()).toBe(true);

    await runner.add({ id: 'vendor' });
    await runner.add({ id: 'tenant-a' });
    await runner.waitHealthy(rid('vendor'), 20_000);
    await runner.waitHealthy(rid('tenant-a'), 20_000);
    const vendorPid = h.status('vendor').pid!;
    const tenantAPid = h.status('tenant-a').pid!;
    expect(vendorPid).not.toBe(tenantAPid);

    // A third one while the first two keep answering.
    const loops = [queryLoop(h, 'vendor'), queryLoop(h, 'tenant-a')];
    await runner.add({ id: 'tenant-b' });
    await runner.waitHealthy(rid('tenant-b'), 20_000);
    await waitFor('queries on both during the add', () => loops.every((l) => l.stats.ok >= 3));
    for (const l of loops) await l.stop();
    expect(loops.map((l) => l.stats.failures)).toEqual([[], []]);
    expect(h.status('vendor').pid).toBe(vendorPid);
    expect(h.status('tenant-a').pid).toBe(tenantAPid);
    expect(runner.status().map((s) => s.id)).toEqual(['vendor', 'tenant-a', 'tenant-b']);

    // osqueryd really used our extension: config fetched through our plugin.
    await waitFor('genConfig called', () => (h!.status('tenant-b').extension as { calls: { genConfig: number } }).calls.genConfig >= 1);
    // Each tenant has its own database: tenant-a's queries are not in vendor's log.
    const vendorDb = instancePaths(h.root, rid('vendor'), h.status('vendor').run_id!, runner.socketDirectory!).databasePath;
    expect(readFileSync(`${vendorDb}.queries.log`, 'utf8')).toContain('select 1 as one');

    // Remove tenant-a: its process and files are gone, the others untouched.
    const aStatus = h.status('tenant-a');
    const aSocket = instancePaths(h.root, rid('tenant-a'), aStatus.run_id!, runner.socketDirectory!).socketPath;
    expect(runFiles(aSocket).length).toBeGreaterThan(0);
    await runner.remove(rid('tenant-a'));
    expect(isAlive(tenantAPid)).toBe(false);
    expect(runFiles(aSocket)).toEqual([]);
    expect(existsSync(join(h.root, 'registrations', 'tenant-a'))).toBe(false);
    expect(runner.status().map((s) => s.id)).toEqual(['vendor', 'tenant-b']);
    await expect(runner.query(rid('tenant-a'), 'select 1', 1_000)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(h.status('vendor').pid).toBe(vendorPid);

    // Restart tenant-b: new process and run; vendor keeps its pid.
    const b = h.status('tenant-b');
    await runner.restart(rid('tenant-b'));
    await runner.waitHealthy(rid('tenant-b'), 20_000);
    const b2 = h.status('tenant-b');
    expect(b2.pid).not.toBe(b.pid);
    expect(b2.run_id).not.toBe(b.run_id);
    expect(b2.restarts).toBe(1);
    expect(isAlive(b.pid!)).toBe(false);
    expect(h.status('vendor').pid).toBe(vendorPid);
    const hist = runner.history(rid('tenant-b'));
    expect(hist.map((r) => r.runId)).toEqual([b2.run_id, b.run_id]);
    expect(hist[1]).toMatchObject({ pid: b.pid });
    expect(hist[1]!.exitedAt).toBeTruthy();
    expect(hist[1]!.error).toBeUndefined(); // a requested stop is not an error
    expect(hist[0]!.connectedAt).toBeTruthy();
    await expect(runner.query(rid('vendor'), 'select 1 as one', 5_000)).resolves.toEqual([{ one: '1' }]);
  });

  it('brings a kill -9’d osqueryd back, healthy, with a new run in history; the other instance’s pid never changes', async () => {
    h = await startRunner();
    const { runner } = h;
    await runner.add({ id: 'vendor' });
    await runner.add({ id: 'tenant' });
    await runner.waitHealthy(rid('vendor'), 20_000);
    const t1 = await runner.waitHealthy(rid('tenant'), 20_000);
    const vendorPids = new Set<number>();
    const watch = setInterval(() => vendorPids.add(h!.status('vendor').pid ?? -1), 10);
    try {
      process.kill(t1.pid!, 'SIGKILL');
      await waitFor('tenant back with a new pid', () => {
        const s = h!.status('tenant');
        return s.healthy && s.pid !== t1.pid;
      });
    } finally {
      clearInterval(watch);
    }
    expect([...vendorPids]).toEqual([h.status('vendor').pid]);
    const hist = runner.history(rid('tenant'));
    expect(hist).toHaveLength(2);
    expect(hist[1]).toMatchObject({ runId: t1.run_id, exitSignal: 'SIGKILL' });
    expect(hist[1]!.error).toMatch(/SIGKILL/);
    expect(runner.history(rid('vendor'))).toHaveLength(1);
    expect(h.status('tenant').restarts).toBe(1);
  });

  it('restartAll relaunches every instance', async () => {
    h = await startRunner();
    await h.runner.add({ id: 'vendor' });
    await h.runner.add({ id: 'tenant' });
    const before = await Promise.all(['vendor', 'tenant'].map((id) => h!.runner.waitHealthy(rid(id), 20_000)));
    await h.runner.restartAll();
    const after = await Promise.all(['vendor', 'tenant'].map((id) => h!.runner.waitHealthy(rid(id), 20_000)));
    after.forEach((s, i) => {
      expect(s.run_id).not.toBe(before[i]!.run_id);
      expect(s.restarts).toBe(1);
      expect(isAlive(before[i]!.pid!)).toBe(false);
    });
  });

  it('a tenant whose osqueryd crashes on a query leaves the vendor instance untouched', async () => {
    h = await startRunner({
      instanceEnv: (reg) => (reg.id === 'tenant' ? { OSQUERYD_SIM_FAULTS: 'crash_on_query=CRASH_MARKER' } : undefined),
    });
    const { runner } = h;
    await runner.add({ id: 'vendor' });
    await runner.add({ id: 'tenant' });
    const v = await runner.waitHealthy(rid('vendor'), 20_000);
    const t = await runner.waitHealthy(rid('tenant'), 20_000);
    await expect(runner.query(rid('tenant'), "select 'CRASH_MARKER' as x", 5_000)).rejects.toBeTruthy();
    await waitFor('tenant relaunched', () => {
      const s = h!.status('tenant');
      return s.healthy && s.run_id !== t.run_id;
    });
    expect(runner.history(rid('tenant'))[1]).toMatchObject({ runId: t.run_id, exitSignal: 'SIGABRT' });
    expect(h.status('vendor')).toMatchObject({ pid: v.pid, run_id: v.run_id, restarts: 0, healthy: true });
    expect(runner.history(rid('vendor'))).toHaveLength(1);
    await expect(runner.query(rid('vendor'), "select 'CRASH_MARKER' as x", 5_000)).resolves.toEqual([{ x: 'CRASH_MARKER' }]);
  });

  it('replaces a hung osqueryd once the health check fails in a row', async () => {
    let runs = 0;
    h = await startRunner({
      // Only the first tenant run hangs; the extension server's own manager ping is slowed so the health check is what notices.
      instanceEnv: (reg) => (reg.id === 'tenant' && runs++ === 0 ? { OSQUERYD_SIM_FAULTS: 'hang_after_ms=1500' } : undefined),
      timings: {
        healthIntervalMs: 300,
        healthStartupDelayMs: 300,
        healthTimeoutMs: 500,
        healthMaxFailures: 3,
        managerPingIntervalMs: 600_000,
        stopGraceMs: 1_000,
        callTimeoutMs: 2_000,
      },
    });
    const { runner } = h;
    await runner.add({ id: 'vendor' });
    await runner.add({ id: 'tenant' });
    const v = await runner.waitHealthy(rid('vendor'), 20_000);
    const t = await runner.waitHealthy(rid('tenant'), 20_000);
    await waitFor('unhealthy state seen', () => h!.status('tenant').state === 'unhealthy' || h!.status('tenant').run_id !== t.run_id);
    await waitFor('tenant replaced', () => {
      const s = h!.status('tenant');
      return s.healthy && s.run_id !== t.run_id;
    });
    const old = runner.history(rid('tenant')).find((r) => r.runId === t.run_id)!;
    expect(old.error).toMatch(/health check failed 3 times/);
    expect(isAlive(t.pid!)).toBe(false);
    expect(h.status('vendor')).toMatchObject({ pid: v.pid, restarts: 0 });
  });

  it('backs off a crash loop with growing delays and reports it instead of spinning', async () => {
    h = await startRunner({
      instanceEnv: (reg) => (reg.id === 'tenant' ? { OSQUERYD_SIM_FAULTS: 'exit_after_ms=300' } : undefined),
      backoff: {
        initialMs: 100,
        maxMs: 5_000,
        multiplier: 2,
        jitter: 0.2,
        stableAfterMs: 60_000,
        crashLoopThreshold: 4,
        crashLoopWindowMs: 60_000,
      },
    });
    const { runner } = h;
    await runner.add({ id: 'vendor' });
    await runner.add({ id: 'tenant' });
    const v = await runner.waitHealthy(rid('vendor'), 20_000);
    const looping = await waitFor(
      'crash loop reported',
      () => {
        const s = h!.status('tenant');
        return s.crash_loop && s.state === 'backoff' && s.recent_delays_ms.length >= 4 ? s : undefined;
      },
      30_000,
    );
    const delays = looping.recent_delays_ms;
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThan(delays[i - 1]!);
    expect(looping.next_launch_at).toBeGreaterThan(0);
    expect(looping.consecutive_failures).toBeGreaterThanOrEqual(4);
    const hist = runner.history(rid('tenant'));
    expect(hist.length).toBeGreaterThanOrEqual(4);
    for (const r of hist.slice(1)) expect(r.error).toMatch(/exited with code 1/);
    expect(h.status('vendor')).toMatchObject({ pid: v.pid, restarts: 0, healthy: true, crash_loop: false });
    // An operator restart clears the flag.
    await runner.restart(rid('tenant'));
    expect(h.status('tenant').crash_loop).toBe(false);
  });

  it('brings back a registration added at runtime after a supervisor restart, and leaves no files behind', async () => {
    h = await startRunner();
    await h.runner.add({ id: 'tenant-x', osqueryFlags: ['--logger_min_status=1'] });
    const first = await h.runner.waitHealthy(rid('tenant-x'), 20_000);
    const root = h.root;
    const socketDir = h.runner.socketDirectory!;
    const previous = h;
    h = undefined;
    expect(await previous.stop({ keepRoot: true })).toEqual([]);
    expect(isAlive(first.pid!)).toBe(false);
    expect(readdirSync(socketDir)).toEqual([]);
    expect(existsSync(join(root, 'supervisor.pid'))).toBe(false);
    h = await startRunner({}, root);
    const again = await h.runner.waitHealthy(rid('tenant-x'), 20_000);
    expect(again.run_id).not.toBe(first.run_id);
    expect(h.runner.registrationsList()).toMatchObject([{ id: 'tenant-x', osqueryFlags: ['--logger_min_status=1'] }]);
    expect(h.runner.history(rid('tenant-x')).map((r) => r.runId)).toEqual([again.run_id, first.run_id]);
  });

  it('can be interrupted before it ever ran (RunGroup contract), and then refuses changes', async () => {
    const t = tempRoot('rx');
    const runner = new Runner({ root: t.dir, osquerydPath: osquerydPath(), extensionFactory: testExtensionFactory() });
    await runner.interrupt(new Error('group ended'));
    await runner.execute();
    await expect(runner.add({ id: 'late' })).rejects.toMatchObject({ code: 'E_SHUTDOWN' });
    expect(existsSync(join(t.dir, 'supervisor.pid'))).toBe(false);
    t.cleanup();
  });

  it('refuses bad ids and reserved flags before touching disk, and unknown ids with E_NOT_FOUND', async () => {
    h = await startRunner();
    const { runner } = h;
    await expect(runner.add({ id: '../escape' })).rejects.toMatchObject({ code: 'E_INVALID_REGISTRATION_ID' });
    await expect(runner.add({ id: 'Tenant' })).rejects.toMatchObject({ code: 'E_INVALID_REGISTRATION_ID' });
    await expect(runner.add({ id: 'ok', osqueryFlags: ['--extensions_socket=/tmp/x'] })).rejects.toMatchObject({
      code: 'E_INVALID_ARGUMENT',
    });
    expect(runner.registrationsList()).toEqual([]);
    expect(existsSync(join(h.root, 'registrations'))).toBe(false);
    await expect(runner.remove(rid('nope'))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(runner.restart(rid('nope'))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(runner.query(rid('nope'), 'select 1', 100)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(() => runner.output(rid('../x'))).toThrow(expect.objectContaining({ code: 'E_INVALID_REGISTRATION_ID' }));
    await runner.add({ id: 'dup' });
    await expect(runner.add({ id: 'dup' })).rejects.toMatchObject({ code: 'E_ALREADY_EXISTS' });
  });

  it('keeps the current run’s output in its ring, and shows the limits mode in status', async () => {
    h = await startRunner();
    await h.runner.add({ id: 'capped', limits: { memoryMb: 300, cpuPercent: 20 } });
    await h.runner.add({ id: 'free' });
    const capped = await h.runner.waitHealthy(rid('capped'), 20_000);
    await h.runner.waitHealthy(rid('free'), 20_000);
    expect(capped.limits).toMatchObject({ mode: 'watchdog', memory_mb: 300, cpu_percent: 20 });
    expect(h.status('free').limits.mode).toBe('none');
    const cmdline = readFileSync(`/proc/${capped.pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline).toContain('--watchdog_memory_limit=300');
    expect(cmdline).toContain('--watchdog_utilization_limit=20');
    const ring = h.runner.output(rid('capped'))!;
    expect(ring.runId).toBe(capped.run_id);
    await waitFor('osqueryd output captured', () => ring.read(0).lines.length > 0);
  });
});
