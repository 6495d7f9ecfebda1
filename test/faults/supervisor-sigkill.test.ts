// Issue 9 (faults): the supervisor itself SIGKILLed — first while log
// batches are in flight to a slow device server, then while its instances are
// still launching (osqueryd slow to bind its socket). Nothing runs in a
// SIGKILLed process, so everything is up to the next start: no log the
// logger plugin acknowledged may be lost, exactly one osqueryd per
// registration may be alive (checked in /proc, not in what the supervisor
// says), and the dead supervisors' sockets, pidfiles and launch records must
// be gone.
//
// The osqueryds run through a wrapper that sends their output to /dev/null
// (bench/reliability/osqueryd-sim-quiet.sh): otherwise the stand-in dies of
// EPIPE with its supervisor's pipes and the reaper would have nothing to do.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instancePaths, runShortId } from '../../src/runtime/instance/paths.js';
import { recordFigures } from '../../bench/reliability/figures.js';
import { LauncherProcess } from '../../bench/reliability/launcher-process.js';
import { DeliveryTracker, LogInjector, extensionSocket } from '../../bench/reliability/log-traffic.js';
import { OSQUERYD_SIM_QUIET } from '../../bench/reliability/paths.js';
import { isAlive } from '../../bench/reliability/procfs.js';
import { Stage } from '../../bench/reliability/stage.js';
import { waitFor } from '../../bench/reliability/wait.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

const IDS = ['kolide', 'acme'];
const LOGS_PER_REGISTRATION = 300;
/** Long enough that a publish is surely in flight when the supervisor dies. */
const SLOW_PUBLISH_MS = 60_000;
/** osqueryd binds its socket this late in the second supervisor's launches. */
const START_DELAY_MS = 6_000;

let stage: Stage;
const sups: LauncherProcess[] = [];
let failed = false;

function start(env?: Record<string, string>): LauncherProcess {
  const sup = LauncherProcess.start({
    ...stage.launcherOptions(),
    osquerydPath: OSQUERYD_SIM_QUIET,
    config: { log_buffer: { publish_interval_seconds: 0.2 } },
    ...(env ? { env } : {}),
  });
  sups.push(sup);
  return sup;
}

beforeAll(async () => {
  stage = await Stage.create({
    prefix: 'rk',
    registrations: IDS,
    tenantConfig: () => ({ schedule: { clock: { query: 'select unix_time from time', interval: 1, snapshot: true } } }),
  });
});

afterAll(async () => {
  if (failed) for (const s of sups) process.stderr.write(`${s.tail(80)}\n`);
  for (const s of sups) await s.stop();
  const leaked = await stage?.cleanup();
  expect(leaked ?? [], 'osqueryd processes alive after the last supervisor stopped').toEqual([]);
});

/** Run files (`<short>.*`) in the socket directory that belong to none of `runIds`. */
function strayRunFiles(runIds: string[]): string[] {
  const shorts = runIds.map(runShortId);
  let files: string[] = [];
  try {
    files = readdirSync(stage.socketDir);
  } catch {
    files = [];
  }
  return files.filter((f) => !shorts.some((s) => f.startsWith(`${s}.`)));
}

describe('supervisor SIGKILLed', () => {
  it('during log publication and during launches: no log lost, one osqueryd per registration, stale files cleaned', async () => {
    try {
      const dev = stage.dev;
      const tracker = new DeliveryTracker(dev);
      const injector = new LogInjector('supkill');

      // 1. A healthy supervisor, enrolled, delivering.
      const first = start();
      const ready = await first.waitHealthy(IDS);
      await waitFor(
        'scheduled logs delivered for every tenant',
        () => {
          tracker.poll();
          return IDS.every((id) => (tracker.scheduled.get(id) ?? 0) > 0);
        },
        {
          timeoutMs: 60_000,
          intervalMs: 200,
        },
      );

      // 2. The device server turns slow; logs are acknowledged into the buffers; a publish is in flight.
      dev.setFault({ mode: 'slow', delayMs: SLOW_PUBLISH_MS, methods: ['PublishLogs'] });
      for (const id of IDS) {
        const socket = extensionSocket(stage.socketDir, ready.get(id)!.run_id!)!;
        expect(await injector.inject(id, socket, LOGS_PER_REGISTRATION)).toBe(LOGS_PER_REGISTRATION);
      }
      injector.close();
      await waitFor('a PublishLogs call in flight', () => dev.stats().inFlightByMethod.PublishLogs > 0, { timeoutMs: 10_000 });
      const firstOsqueryds = stage.osqueryds().map((p) => p.pid);
      expect(firstOsqueryds).toHaveLength(IDS.length);
      expect((await first.kill('SIGKILL')).signal).toBe('SIGKILL');
      // Nothing could clean up: the osqueryds live on as orphans.
      const orphansAfterFirstKill = firstOsqueryds.filter(isAlive);

      // 3. The next supervisor reaps them, starts launching, and is SIGKILLed while osqueryd has not bound its socket yet.
      const second = start({ OSQUERYD_SIM_FAULTS: `start_delay_ms=${START_DELAY_MS}` });
      const launching = await waitFor(
        'every instance of the second supervisor launching (osqueryd spawned, no socket yet)',
        async () => {
          const all = await second.client.listInstances();
          return all.length === IDS.length && all.every((i) => i.state === 'connecting' && i.pid && i.run_id) ? all : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 50, explain: () => second.tail(40) },
      );
      for (const i of launching) {
        expect(isAlive(i.pid!), `${i.id} osqueryd spawned`).toBe(true);
        expect(
          existsSync(instancePaths(stage.root, rid(i.id), i.run_id!, stage.socketDir).socketPath),
          `${i.id} socket not bound yet`,
        ).toBe(false);
      }
      expect((await second.kill('SIGKILL')).signal).toBe('SIGKILL');
      // The second supervisor had reaped the first one's orphans before launching.
      expect(firstOsqueryds.filter(isAlive), 'first supervisor osqueryds still alive').toEqual([]);
      const secondOsqueryds = launching.map((i) => i.pid!);

      // 4. A clean start with the device server healthy again.
      dev.setFault(undefined);
      const third = start();
      const live = await third.waitHealthy(IDS);
      const currentPids = IDS.map((id) => live.get(id)!.pid!);

      // Exactly one osqueryd per registration, and it is the one the supervisor reports.
      const onProc = stage.osqueryds();
      for (const id of IDS) {
        expect(
          onProc.filter((p) => p.registrationId === id).map((p) => p.pid),
          `live osqueryds of ${id}`,
        ).toEqual([live.get(id)!.pid]);
      }
      expect(onProc).toHaveLength(IDS.length);
      expect([...firstOsqueryds, ...secondOsqueryds].filter(isAlive), 'osqueryds of killed supervisors alive').toEqual([]);
      // Stale sockets, pidfiles and launch records are gone; the lock names the live supervisor.
      expect(strayRunFiles(IDS.map((id) => live.get(id)!.run_id!))).toEqual([]);
      expect(JSON.parse(readFileSync(join(stage.root, 'supervisor.pid'), 'utf8'))).toMatchObject({ pid: third.pid });
      // The killed supervisors' runs are closed in the history, not left open.
      for (const id of IDS) {
        const runs = await third.client.history(id, 20);
        expect(runs[0]!.run_id).toBe(live.get(id)!.run_id);
        const older = runs.slice(1);
        expect(older.length).toBeGreaterThanOrEqual(2);
        for (const r of older) expect(r.exit_time, `run ${r.run_id} of ${id} closed`).not.toBeNull();
        expect(
          older.some((r) => /reaped at the next start/.test(r.error ?? '')),
          `${id} history names the reaped runs`,
        ).toBe(true);
      }

      // No log lost: every acknowledged log reaches the device server.
      await waitFor('every acknowledged log delivered', () => tracker.missing(injector.written).length === 0, {
        timeoutMs: 60_000,
        intervalMs: 250,
        explain: () => `${tracker.missing(injector.written).length} of ${injector.total} missing\n${third.tail(30)}`,
      });
      expect(tracker.missing(injector.written)).toEqual([]);
      const drained = await waitFor(
        'buffers drained',
        async () => {
          const all = await third.client.listInstances();
          return all.every((i) => i.buffers.result_count + i.buffers.status_count <= 5) ? all : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      expect(currentPids.every(isAlive)).toBe(true);

      const reaped = (s: LauncherProcess) =>
        s
          .records()
          .filter((r) => r.msg === 'reaper: killed osqueryd process groups left by a previous supervisor')
          .flatMap((r) => (r.groups as number[]) ?? []);
      recordFigures('supervisor-sigkill', {
        supervisor_kills: 2,
        killed_during: ['log publication (PublishLogs in flight)', 'instance launch (osqueryd not yet listening)'],
        orphans_after_first_kill: orphansAfterFirstKill.length,
        reaped_by_second_start: reaped(second).length,
        reaped_by_third_start: reaped(third).length,
        live_osqueryds_per_registration: Object.fromEntries(IDS.map((id) => [id, onProc.filter((p) => p.registrationId === id).length])),
        logs_written: injector.total,
        logs_delivered: tracker.total,
        logs_lost: tracker.missing(injector.written).length,
        duplicates_delivered: tracker.duplicates,
        buffered_after: drained.map((i) => i.buffers.result_count + i.buffers.status_count),
      });
    } catch (err) {
      failed = true;
      throw err;
    }
  }, 300_000);
});
