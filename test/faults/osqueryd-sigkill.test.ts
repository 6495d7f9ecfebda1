// Issue 9 (faults): osqueryd SIGKILLed 50 times in a row, round-robin over
// three instances, each kill only once the victim is healthy again. Every
// death must be detected and recovered, the other two instances must keep
// their pid through every kill, no osqueryd or run file may be left behind,
// and the run history must show each kill as a run ended by SIGKILL.
import { afterEach, describe, expect, it } from 'vitest';
import { runShortId } from '../../src/runtime/instance/paths.js';
import { DEFAULT_HISTORY_KEEP } from '../../src/store/run-history.js';
import { median, recordFigures, round, scaled } from '../../bench/reliability/figures.js';
import { isAlive } from '../../bench/reliability/procfs.js';
import { AppHarness } from './support/app-harness.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

const IDS = ['kolide', 'acme', 'globex'] as const;
const KILLS = scaled(50);

let h: AppHarness | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && h) process.stderr.write(`${h.logTail(200)}\n`);
  const report = await h?.stop();
  h = undefined;
  expect(report?.leaked ?? [], 'osqueryd processes alive after the app stopped').toEqual([]);
  expect(report?.socketFiles ?? [], 'files left in the socket directory after the app stopped').toEqual([]);
});

describe('osqueryd killed with SIGKILL, again and again', () => {
  it(`detects and recovers ${KILLS} SIGKILLs across ${IDS.length} instances without touching the others`, async () => {
    // A run that stays up 1 s is "stable" and resets the backoff: each victim
    // is killed about every third kill, so relaunches stay at the initial delay.
    h = await AppHarness.start({ registrations: [...IDS], runner: { backoff: { initialMs: 100, maxMs: 500, stableAfterMs: 1_000 } } });
    const hh = h;
    for (const id of IDS) await hh.waitHealthy(id);
    const killed = new Map<string, number[]>(IDS.map((id) => [id, []]));
    const recoveryMs: number[] = [];

    for (let k = 0; k < KILLS; k++) {
      const id = IDS[k % IDS.length]!;
      const victim = await hh.waitHealthy(id);
      const others = IDS.filter((x) => x !== id).map((x) => ({ id: x, pid: hh.status(x).pid }));
      const seen = new Map(others.map((o) => [o.id, new Set<number | null>()]));
      const watch = setInterval(() => {
        for (const o of others) seen.get(o.id)!.add(hh.status(o.id).pid);
      }, 5);
      const t0 = Date.now();
      process.kill(victim.pid!, 'SIGKILL');
      try {
        await hh.waitHealthy(id, 30_000, (s) => s.pid !== victim.pid);
      } finally {
        clearInterval(watch);
      }
      recoveryMs.push(Date.now() - t0);
      killed.get(id)!.push(victim.pid!);

      // The others were never restarted while this one was down.
      for (const o of others) expect([...seen.get(o.id)!], `${o.id}'s pid while ${id} (kill ${k + 1}) recovered`).toEqual([o.pid]);
      // The death is in the history: the killed run ended by SIGKILL, and a new run is current.
      const [current, previous] = hh.app.runner.history(rid(id), 2);
      expect(previous, `history of ${id} after kill ${k + 1}`).toMatchObject({
        runId: victim.run_id,
        pid: victim.pid,
        exitSignal: 'SIGKILL',
      });
      expect(previous!.error).toMatch(/SIGKILL/);
      expect(current!.runId).toBe(hh.status(id).run_id);
      expect(isAlive(victim.pid!)).toBe(false);
    }

    // Restarts count every kill and nothing else; the history (newest
    // DEFAULT_HISTORY_KEEP runs per registration) lists the killed pids.
    const current = new Map(IDS.map((id) => [id, hh.status(id)]));
    for (const id of IDS) {
      const kills = killed.get(id)!;
      expect(current.get(id)!.restarts, `${id} restarts`).toBe(kills.length);
      const history = hh.app.runner.history(rid(id), 1_000);
      expect(history).toHaveLength(Math.min(kills.length + 1, DEFAULT_HISTORY_KEEP));
      const sigkilled = history.filter((r) => r.exitSignal === 'SIGKILL').map((r) => r.pid);
      expect(sigkilled.reverse()).toEqual(kills.slice(-(DEFAULT_HISTORY_KEEP - 1)));
    }

    // No orphan: the only live osqueryds of this root are the current ones,
    // and every other pid ever seen is dead.
    const currentPids = [...current.values()].map((s) => s.pid!).sort();
    expect(
      hh
        .liveOsqueryds()
        .map((p) => p.pid)
        .sort(),
    ).toEqual(currentPids);
    const stale = [...hh.pids].filter((p) => !currentPids.includes(p) && isAlive(p));
    expect(stale, 'earlier osqueryd pids still alive').toEqual([]);
    expect(hh.pids.size).toBeGreaterThanOrEqual(KILLS + IDS.length);
    // No run file left but the current runs' (socket, extension socket, pidfile, launch record).
    const shorts = [...current.values()].map((s) => runShortId(s.run_id!));
    const strays = hh.socketFiles().filter((f) => !shorts.some((s) => f.startsWith(`${s}.`)));
    expect(strays, 'run files of dead runs').toEqual([]);

    const sorted = [...recoveryMs].sort((a, b) => a - b);
    recordFigures('osqueryd-sigkill', {
      instances: IDS.length,
      kills: KILLS,
      kills_detected_and_recovered: recoveryMs.length,
      other_instance_restarts: 0,
      pids_seen: hh.pids.size,
      orphans_left: stale.length,
      recovery_ms_median: round(median(recoveryMs), 0),
      recovery_ms_p95: sorted[Math.max(0, Math.ceil(sorted.length * 0.95) - 1)],
      recovery_ms_max: sorted.at(-1),
    });
  }, 600_000);
});
