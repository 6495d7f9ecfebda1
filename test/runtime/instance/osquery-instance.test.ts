// Issue 4: one OsqueryInstance run against the osqueryd stand-in.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildOsquerydArgs } from '../../../src/runtime/instance/flags.js';
import { OsqueryInstance, type OsqueryInstanceOptions } from '../../../src/runtime/instance/osquery-instance.js';
import { resolveSocketDir } from '../../../src/runtime/instance/paths.js';
import { runFiles } from '../../../src/runtime/instance/run-files.js';
import { openDatabase, type SqliteDatabase } from '../../../src/store/database.js';
import { RunHistoryStore } from '../../../src/store/run-history.js';
import type { Registration } from '../../../src/store/registrations.js';
import { testExtensionFactory } from '../fixtures/test-extension.mjs';
import { FAST } from '../harness.js';
import { isAlive, osquerydPath, reapAll, simAvailable, tempRoot, waitFor } from '../helpers.js';
import { parseRegistrationId as rid } from '../../../src/registration.js';

const started = new Set<number>();
const cleanups: Array<() => void | Promise<void>> = [];
let logs: string[] = [];

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') process.stderr.write(logs.slice(-100).join(''));
  while (cleanups.length) await cleanups.pop()!();
  const leaked = await reapAll(started);
  started.clear();
  expect(leaked, 'processes left alive').toEqual([]);
});

beforeAll(() => {
  if (!simAvailable()) throw new Error('dist/src/sim/main.js is missing: run `npx tsc -p .` once the stand-in exists');
});

function setup(over: Partial<OsqueryInstanceOptions> = {}, reg: Partial<Registration> = {}) {
  const t = tempRoot('oi');
  const db: SqliteDatabase = openDatabase(join(t.dir, 'h.sqlite'));
  cleanups.push(t.cleanup, () => {
    db.close();
  });
  const history = new RunHistoryStore(db);
  logs = [];
  const logger = pino({ level: 'debug' }, { write: (l: string) => void logs.push(l) });
  const make = (extra: Partial<OsqueryInstanceOptions> = {}) => {
    const inst = new OsqueryInstance({
      root: t.dir,
      socketDir: resolveSocketDir(t.dir),
      registration: { id: rid('tenant'), limits: {}, osqueryFlags: [], createdAt: new Date().toISOString(), ...reg },
      osquerydPath: osquerydPath(),
      extensionFactory: testExtensionFactory(),
      history,
      logger,
      timings: FAST.timings!,
      flagTimings: FAST.flagTimings!,
      limits: { cgroup: 'off' },
      ...over,
      ...extra,
    });
    cleanups.push(() => inst.kill());
    return inst;
  };
  return { root: t.dir, history, make };
}

function track(inst: OsqueryInstance): void {
  if (inst.pid) started.add(inst.pid);
}

describe('OsqueryInstance', () => {
  it('launches with launcher’s flag order, registers its extension, serves queries, and stop() removes every file', async () => {
    // No health checks during this test: the transition list below is exact.
    const { make, history } = setup(
      { timings: { ...FAST.timings!, healthStartupDelayMs: 600_000 } },
      { osqueryFlags: ['--logger_min_status=1'] },
    );
    const inst = make();
    const states: string[] = [];
    await inst.launch();
    track(inst);
    states.push(inst.state);
    expect(inst.state).toBe('running');

    const argv = readFileSync(`/proc/${inst.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const expected = buildOsquerydArgs({
      names: { extensionName: 'kolide_grpc', configPlugin: 'kolide_grpc', loggerPlugin: 'kolide_grpc', distributedPlugin: 'kolide_grpc' },
      pidfilePath: inst.paths.pidfilePath,
      databasePath: inst.paths.databasePath,
      socketPath: inst.paths.socketPath,
      watchdogFlags: ['--disable_watchdog', '--distributed_denylist_duration=0'],
      userFlags: ['--logger_min_status=1'],
      timings: FAST.flagTimings!,
    });
    expect(argv.slice(-expected.length)).toEqual(expected);
    expect(Buffer.byteLength(inst.paths.socketPath)).toBeLessThanOrEqual(97);

    expect(await inst.query('select 1 as one', 5_000)).toEqual([{ one: '1' }]);
    const st = inst.status();
    expect(st).toMatchObject({ state: 'running', healthy: true, pid: inst.pid, limits: { mode: 'none' } });
    expect(st.connected_at).toBeGreaterThanOrEqual(st.started_at!);
    expect(st.osqueryd_version).toBeTruthy(); // from osquery_info, like launcher's SetConnected
    expect(st.instance_id).toBeTruthy();
    expect(existsSync(inst.paths.runRecordPath)).toBe(true);
    // osqueryd really uses our extension: it fetches its config through our plugin.
    await waitFor('genConfig through our plugin', () => (inst.status().extension as { calls: { genConfig: number } }).calls.genConfig >= 1);

    const pid = inst.pid!;
    const files = runFiles(inst.paths.socketPath);
    expect(files.length).toBeGreaterThanOrEqual(2);
    await Promise.all([inst.stop(), inst.stop()]);
    await inst.kill(); // joins
    expect(inst.state).toBe('exited');
    expect(isAlive(pid)).toBe(false);
    expect(runFiles(inst.paths.socketPath)).toEqual([]);
    const exit = await inst.exited;
    expect(exit).toMatchObject({ requested: true, connected: true });
    expect(exit.error).toBeUndefined();
    const rec = history.get(inst.runId)!;
    expect(rec).toMatchObject({ registrationId: 'tenant', pid, osquerydPath: osquerydPath() });
    expect(rec.connectedAt && rec.exitedAt).toBeTruthy();
    expect(rec.osquerydVersion).toBe(st.osqueryd_version);
    expect(rec.error).toBeUndefined();
    expect((inst.status().extension as { stopped: boolean }).stopped).toBe(true);
    // Every state change went through the one setter, which logged it.
    const transitions = logs
      .map((l) => JSON.parse(l) as { component?: string; run_id?: string; from?: string; to?: string })
      .filter((l) => l.component === 'osquery_instance' && l.run_id === inst.runId && l.to)
      .map((l) => `${l.from}>${l.to}`);
    expect(transitions).toEqual(['new>starting', 'starting>connecting', 'connecting>running', 'running>stopping', 'stopping>exited']);
  });

  it('stop() while connecting ends the launch, kills osqueryd and removes its files', async () => {
    const { make } = setup({ env: { OSQUERYD_SIM_FAULTS: 'start_delay_ms=5000' } });
    const inst = make();
    const launch = inst.launch();
    await waitFor('spawned', () => inst.pid);
    track(inst);
    await inst.stop();
    await expect(launch).rejects.toMatchObject({ code: 'E_SHUTDOWN' });
    expect(await inst.exited).toMatchObject({ requested: true, connected: false });
    expect(inst.state).toBe('exited');
    expect(isAlive(inst.pid!)).toBe(false);
    expect(runFiles(inst.paths.socketPath)).toEqual([]);
  });

  it('kill() ends a run at once with SIGKILL to the process group', async () => {
    const { make } = setup();
    const inst = make();
    await inst.launch();
    track(inst);
    await inst.kill();
    expect((await inst.exited).process).toEqual({ code: null, signal: 'SIGKILL' });
    expect(runFiles(inst.paths.socketPath)).toEqual([]);
  });

  it('records a failed launch (binary missing) in history, and cleans up', async () => {
    const { make, history } = setup({ osquerydPath: '/nonexistent/osqueryd' });
    const inst = make();
    await expect(inst.launch()).rejects.toMatchObject({ code: 'E_LAUNCH' });
    const exit = await inst.exited;
    expect(exit.error?.message).toMatch(/nonexistent/);
    expect(inst.state).toBe('failed');
    expect(history.get(inst.runId)).toMatchObject({ error: expect.stringMatching(/cannot start osqueryd/) });
    expect(history.get(inst.runId)!.exitedAt).toBeTruthy();
  });

  it('gives up when the socket does not appear in time, and kills what it started', async () => {
    const { make, history } = setup({
      env: { OSQUERYD_SIM_FAULTS: 'start_delay_ms=5000' },
      timings: { ...FAST.timings!, socketTimeoutMs: 500 },
    });
    const inst = make();
    const launch = inst.launch();
    await waitFor('spawned', () => inst.pid);
    track(inst);
    await expect(launch).rejects.toMatchObject({ code: 'E_TIMEOUT' });
    await inst.exited;
    expect(isAlive(inst.pid!)).toBe(false);
    expect(runFiles(inst.paths.socketPath)).toEqual([]);
    expect(history.get(inst.runId)!.error).toMatch(/socket/);
  });

  it('ends the run when osqueryd exits by itself', async () => {
    const { make, history } = setup();
    const inst = make();
    await inst.launch();
    track(inst);
    process.kill(inst.pid!, 'SIGKILL');
    const exit = await inst.exited;
    expect(exit.requested).toBe(false);
    expect(exit.error?.message).toMatch(/killed by SIGKILL while running/);
    expect(history.get(inst.runId)).toMatchObject({ exitSignal: 'SIGKILL' });
  });

  it('refuses an extension without a config plugin before spawning anything', async () => {
    const { make } = setup({ extensionFactory: () => ({ name: 'x', plugins: [], start: () => undefined, stop: async () => undefined }) });
    const inst = make();
    await expect(inst.launch()).rejects.toMatchObject({ code: 'E_CONFIG' });
    expect(inst.pid).toBeUndefined();
  });

  it('stop() before launch ends the instance without starting anything', async () => {
    const { make } = setup();
    const inst = make();
    await inst.stop();
    expect(inst.state).toBe('exited');
    await expect(inst.launch()).rejects.toMatchObject({ code: 'E_SHUTDOWN' });
  });
});
