// Issue 9 (faults): an osqueryd that hangs once running (`hang_after_ms`: it
// keeps its socket open and never answers again), one that is slower to start
// than the socket timeout, and one that is slow but within it. The hung and
// the too-slow ones must be detected by the supervisor's own checks and
// replaced; the slow-but-in-time one must simply become healthy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigures } from '../../bench/reliability/figures.js';
import { isAlive } from '../../bench/reliability/procfs.js';
import { AppHarness, FAST_RUNNER } from './support/app-harness.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

/** The stand-in hangs this long after it starts (it is healthy well before). */
const HANG_AFTER_MS = 4_000;
const SOCKET_TIMEOUT_MS = 6_000;
/** Slower than the socket timeout: the launch must give up on it. */
const TOO_SLOW_MS = 30_000;
/** Slow, but within the socket timeout (with room for a loaded CI box to boot Node). */
const SLOW_OK_MS = 2_000;

const FAULTS: Record<string, string> = {
  hung: `hang_after_ms=${HANG_AFTER_MS}`,
  'slow-fail': `start_delay_ms=${TOO_SLOW_MS}`,
  'slow-ok': `start_delay_ms=${SLOW_OK_MS}`,
};

let h: AppHarness | undefined;
let failed = false;
const runs = new Map<string, number>();

beforeAll(async () => {
  h = await AppHarness.start({
    registrations: ['kolide', ...Object.keys(FAULTS)],
    runner: {
      timings: { socketTimeoutMs: SOCKET_TIMEOUT_MS },
      backoff: { initialMs: 200, maxMs: 1_000 },
      // Only each registration's first run gets its fault: the replacement must come up clean.
      instanceEnv: (reg) => {
        const n = (runs.get(reg.id) ?? 0) + 1;
        runs.set(reg.id, n);
        const fault = FAULTS[reg.id];
        return n === 1 && fault ? { OSQUERYD_SIM_FAULTS: fault } : undefined;
      },
    },
  });
});

afterAll(async () => {
  if (failed && h) process.stderr.write(`${h.logTail(250)}\n`);
  const report = await h?.stop();
  expect(report?.leaked ?? [], 'osqueryd processes alive after the app stopped').toEqual([]);
  expect(report?.socketFiles ?? [], 'files left in the socket directory').toEqual([]);
});

/** The app's log records for one run, parsed. */
function runRecords(runId: string): Array<{ time: number; msg: string; err?: string }> {
  return h!.logs
    .filter((l) => l.includes(runId))
    .map((l) => JSON.parse(l) as { time: number; msg: string; err?: string; run_id?: string })
    .filter((r) => r.run_id === runId);
}

describe('hung and slow osqueryds', () => {
  it('replaces an osqueryd that hangs while running (the extension server notices first)', async () => {
    try {
      const hh = h!;
      const first = await hh.waitHealthy('hung');
      const second = await hh.waitHealthy('hung', 60_000, (s) => s.run_id !== first.run_id);
      expect(second.pid).not.toBe(first.pid);
      expect(second.restarts).toBe(1);
      const [, hungRun] = hh.app.runner.history(rid('hung'), 2);
      expect(hungRun).toMatchObject({ runId: first.run_id, pid: first.pid });
      expect(hungRun!.connectedAt, 'the hung run was running before it hung').toBeTruthy();
      // Ended by the supervisor noticing (health check or the extension's manager ping), not by osqueryd itself.
      expect(hungRun!.error).toMatch(/health check failed \d+ times in a row|extension manager .* is gone/);
      expect(isAlive(first.pid!)).toBe(false);
      // The other instances were not disturbed.
      expect(hh.status('kolide').restarts).toBe(0);

      const records = runRecords(first.run_id!);
      const hungAt = records.find((r) => r.msg.includes('Fault injection: hanging'))?.time;
      const endedAt = records.find((r) => r.msg === 'instance stopping')?.time;
      const t = FAST_RUNNER.timings!;
      recordFigures('osqueryd-hang', {
        detected_by: /health check/.test(hungRun!.error ?? '') ? 'health check' : 'extension manager ping',
        replaced_by_pid: second.pid,
        detection_ms: hungAt !== undefined && endedAt !== undefined ? endedAt - hungAt : null,
        // The first check can start up to one interval after the hang.
        health_window_ms: t.healthMaxFailures! * (t.healthIntervalMs! + t.healthTimeoutMs!) + t.healthIntervalMs!,
        manager_ping_window_ms: t.managerPingIntervalMs! + t.callTimeoutMs!,
        replaced: true,
      });
    } catch (err) {
      failed = true;
      throw err;
    }
  }, 120_000);

  it('gives up on an osqueryd slower to start than the socket timeout and launches a new one', async () => {
    try {
      const hh = h!;
      const s = await hh.waitHealthy('slow-fail', 60_000);
      expect(s.restarts).toBe(1);
      const [current, slow] = hh.app.runner.history(rid('slow-fail'), 2);
      expect(current!.runId).toBe(s.run_id);
      expect(slow!.connectedAt).toBeUndefined();
      expect(slow!.error).toMatch(new RegExp(`timed out after ${SOCKET_TIMEOUT_MS} ms waiting for osqueryd socket`));
      expect(isAlive(slow!.pid!)).toBe(false);
      recordFigures('osqueryd-slow-start', {
        start_delay_ms: TOO_SLOW_MS,
        socket_timeout_ms: SOCKET_TIMEOUT_MS,
        launch_failed_with: 'E_TIMEOUT waiting for osqueryd socket',
        replaced: true,
      });
    } catch (err) {
      failed = true;
      throw err;
    }
  }, 120_000);

  it('waits for an osqueryd that is slow to start but within the socket timeout', async () => {
    try {
      const hh = h!;
      const s = await hh.waitHealthy('slow-ok', 60_000);
      expect(s.restarts).toBe(0);
      const history = hh.app.runner.history(rid('slow-ok'), 10);
      expect(history).toHaveLength(1);
      expect(history[0]!.runId).toBe(s.run_id);
      // It really was slow: it could not connect before the start delay passed.
      expect(Date.parse(history[0]!.connectedAt!) - Date.parse(history[0]!.startedAt)).toBeGreaterThanOrEqual(SLOW_OK_MS);
      recordFigures('osqueryd-slow-start-within-timeout', {
        start_delay_ms: SLOW_OK_MS,
        socket_timeout_ms: SOCKET_TIMEOUT_MS,
        ms_to_running: Date.parse(history[0]!.connectedAt!) - Date.parse(history[0]!.startedAt),
        restarts: s.restarts,
      });
    } catch (err) {
      failed = true;
      throw err;
    }
  }, 120_000);
});

describe('hung osqueryd, health checks alone', () => {
  // The extension server's manager ping (above) usually notices a hang first;
  // with it switched off, the health checks alone must catch it.
  it('replaces a hung osqueryd after healthMaxFailures failed checks in a row', async () => {
    let hc: AppHarness | undefined;
    let n = 0;
    try {
      hc = await AppHarness.start({
        registrations: ['hung'],
        runner: {
          timings: { managerPingIntervalMs: 0 },
          instanceEnv: () => (++n === 1 ? { OSQUERYD_SIM_FAULTS: `hang_after_ms=${HANG_AFTER_MS}` } : undefined),
        },
      });
      const first = await hc.waitHealthy('hung');
      const second = await hc.waitHealthy('hung', 60_000, (s) => s.run_id !== first.run_id);
      const [, hungRun] = hc.app.runner.history(rid('hung'), 2);
      expect(hungRun).toMatchObject({ runId: first.run_id, pid: first.pid });
      expect(hungRun!.connectedAt).toBeTruthy();
      const t = FAST_RUNNER.timings!;
      expect(hungRun!.error).toMatch(new RegExp(`health check failed ${t.healthMaxFailures} times in a row`));
      expect(isAlive(first.pid!)).toBe(false);
      expect(second.restarts).toBe(1);
      const records = hc.logs
        .map((l) => JSON.parse(l) as { time: number; msg: string; run_id?: string })
        .filter((r) => r.run_id === first.run_id);
      const hungAt = records.find((r) => r.msg.includes('Fault injection: hanging'))?.time;
      const endedAt = records.find((r) => r.msg === 'instance stopping')?.time;
      recordFigures('osqueryd-hang-health-check', {
        detected_by: 'health check',
        detection_ms: hungAt !== undefined && endedAt !== undefined ? endedAt - hungAt : null,
        // The first check can start up to one interval after the hang.
        health_window_ms: t.healthMaxFailures! * (t.healthIntervalMs! + t.healthTimeoutMs!) + t.healthIntervalMs!,
        replaced: true,
      });
    } catch (err) {
      if (hc) process.stderr.write(`${hc.logTail(200)}\n`);
      throw err;
    } finally {
      const report = await hc?.stop();
      expect(report?.leaked ?? []).toEqual([]);
      expect(report?.socketFiles ?? []).toEqual([]);
    }
  }, 120_000);
});
