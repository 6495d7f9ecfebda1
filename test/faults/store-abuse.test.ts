// issue 19: the durable store under real-world abuse, with a real
// `bin/launcher run` process, real osqueryd stand-ins, the local device
// server and real SQLite files:
// - a database corrupted on purpose (pages overwritten while the supervisor
//   was stopped) → the next start moves it aside, restores the newest backup
//   and reports it (error record in the supervisor log, a store_incidents
//   row); without a backup → a fresh store, said loudly; the config's
//   registrations run either way;
// - a device-server outage compressed in time (publish interval 0.1 s
//   instead of 60 s: 40 s here is ~400 publish intervals, more than 6 hours
//   at the default): the publish attempts back off (the supervisor's own
//   records show the wait doubling to its cap, and the server counts the
//   attempts), RSS stays bounded, and after the outage every log arrives, in
//   order per registration.
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { median, round } from '../../bench/reliability/figures.js';
import { LauncherProcess } from '../../bench/reliability/launcher-process.js';
import { DeliveryTracker, INJECTED_NAME, InjectionLoop, LogInjector } from '../../bench/reliability/log-traffic.js';
import { rssMb } from '../../bench/reliability/procfs.js';
import { Stage } from '../../bench/reliability/stage.js';
import { pause, waitFor } from '../../bench/reliability/wait.js';

let stage: Stage | undefined;
let sups: LauncherProcess[] = [];

afterEach(async () => {
  for (const s of sups) {
    const end = await s.stop();
    expect(end.code, 'supervisor exit code after SIGTERM').toBe(0);
  }
  sups = [];
  const leaked = await stage?.cleanup();
  stage = undefined;
  expect(leaked ?? []).toEqual([]);
});

function start(config: Record<string, unknown> = {}): LauncherProcess {
  const s = LauncherProcess.start({
    dir: stage!.dir,
    root: stage!.root,
    deviceUrl: stage!.dev.url,
    registrations: stage!.registrations,
    control: stage!.control,
    config,
  });
  sups.push(s);
  return s;
}

async function stopLast(): Promise<void> {
  const s = sups.pop()!;
  expect((await s.stop()).code).toBe(0);
}

/** Overwrite pages 2..5 with garbage, as a torn write or a bad sector would. */
function corruptPages(file: string): void {
  expect(existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0, 'WAL checkpointed at a clean stop').toBe(0);
  const fd = openSync(file, 'r+');
  try {
    for (let page = 1; page < 5; page++) writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, page * 4096);
  } finally {
    closeSync(fd);
  }
}

function incidents(root: string): Array<{ kind: string; detail: string }> {
  const db = new Database(join(root, 'launcher.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT kind, detail FROM store_incidents ORDER BY id').all() as Array<{ kind: string; detail: string }>;
  } finally {
    db.close();
  }
}

const records = (s: LauncherProcess, msg: string) => s.records().filter((r) => typeof r.msg === 'string' && r.msg.startsWith(msg));

describe('supervisor database corruption (issue 19)', () => {
  it('a corrupt page: the next start keeps the bad file aside, restores the newest backup and reports it', async () => {
    stage = await Stage.create({ prefix: 'sc', registrations: ['kolide', 'acme'] });
    let s = start();
    await s.waitHealthy(stage.ids);
    const backups = join(stage.root, 'backups');
    // The first backup is taken at start (there was none).
    await waitFor('a backup', () => existsSync(backups) && readdirSync(backups).some((n) => n.endsWith('.sqlite')), {
      timeoutMs: 30_000,
      intervalMs: 100,
      explain: () => s.tail(30),
    });
    await stopLast();
    corruptPages(join(stage.root, 'launcher.sqlite'));

    s = start();
    await s.waitHealthy(stage.ids);
    const said = records(s, 'the supervisor database was corrupt: moved aside and restored');
    expect(said, s.tail(40)).toHaveLength(1);
    expect(said[0]!.level).toBe(50);
    expect(String(said[0]!.backup)).toContain(backups);
    const aside = readdirSync(stage.root).filter(
      (n) => n.startsWith('launcher.sqlite.corrupt-') && !n.endsWith('-wal') && !n.endsWith('-shm'),
    );
    expect(aside).toHaveLength(1);
    expect(statSync(join(stage.root, aside[0]!)).size).toBeGreaterThan(0);
    expect(incidents(stage.root).map((i) => i.kind)).toEqual(['corrupt_restored']);
    // Every registration's backend is told too, as an ERROR status log (osquery's short keys).
    for (const id of stage.ids) {
      await waitFor(
        `the incident status log reaches ${id}'s backend`,
        () => stage!.dev.logs({ tenant: id, logType: 4 }).some((l) => l.data.includes('database was corrupt')),
        {
          timeoutMs: 30_000,
          intervalMs: 100,
          explain: () => s.tail(30),
        },
      );
      const line = stage.dev.logs({ tenant: id, logType: 4 }).find((l) => l.data.includes('database was corrupt'))!;
      expect(JSON.parse(line.data)).toMatchObject({ s: 2, m: expect.stringContaining('restored from the newest sound backup') });
    }
  });

  it('a corrupt file and no backup: a fresh store, said loudly; the config registrations run and enroll again', async () => {
    stage = await Stage.create({ prefix: 'sf', registrations: ['kolide', 'acme'] });
    const config = { store: { backup_interval_hours: 0 } };
    let s = start(config);
    await s.waitHealthy(stage.ids);
    await waitFor('enrolled', () => stage!.ids.every((id) => stage!.dev.nodes(id).length === 1), { timeoutMs: 30_000, intervalMs: 100 });
    await stopLast();
    corruptPages(join(stage.root, 'launcher.sqlite'));

    s = start(config);
    await s.waitHealthy(stage.ids);
    const said = records(s, 'the supervisor database was corrupt and no sound backup exists');
    expect(said, s.tail(40)).toHaveLength(1);
    expect(said[0]!.level).toBe(50);
    expect(String(said[0]!.msg)).toContain('FRESH STORE');
    expect(incidents(stage.root).map((i) => i.kind)).toEqual(['corrupt_fresh']);
    // The node keys went with the corrupt file: each registration enrolled again.
    await waitFor('enrolled again', () => stage!.ids.every((id) => stage!.dev.nodes(id).length === 2), {
      timeoutMs: 30_000,
      intervalMs: 100,
      explain: () => s.tail(30),
    });
  });
});

describe('device server outage, compressed in time (issue 19)', () => {
  it('publish attempts back off with the wait doubling to its cap, RSS stays bounded, every log arrives in order', async () => {
    const ids = ['kolide', 'acme', 'globex', 'initech'];
    stage = await Stage.create({ prefix: 'so', registrations: ids });
    const s = start({ log_buffer: { publish_interval_seconds: 0.1 } });
    await s.waitHealthy(ids);
    await waitFor('enrolled', () => ids.every((id) => stage!.dev.nodes(id).length === 1), { timeoutMs: 30_000, intervalMs: 100 });
    const injector = new LogInjector('so', 1_000);
    const load = new InjectionLoop({ injector, resolve: stage.socketResolver(() => s.client), perTick: 5, tickMs: 100 });
    load.start();
    const tracker = new DeliveryTracker(stage.dev);
    try {
      await waitFor('warm-up delivered', () => injector.total > 200 && tracker.missing(injector.written).length < injector.total, {
        timeoutMs: 30_000,
        intervalMs: 200,
      });
      const rssBefore: number[] = [];
      for (let i = 0; i < 5; i++) {
        rssBefore.push(rssMb(s.pid) ?? NaN);
        await pause(200);
      }
      const calls0 = stage.dev.stats().calls.PublishLogs;
      const began = Date.now();
      // A broken proxy answering 200 with HTML: not retried by the device client, so without a backoff every
      // interval (0.1 s) was a failed publish re-reading and re-encoding each registration's oldest batch.
      stage.dev.setFault({ mode: 'garbage', methods: ['PublishLogs'] });
      const rssDuring: number[] = [];
      while (Date.now() - began < 40_000) {
        rssDuring.push(rssMb(s.pid) ?? NaN);
        await pause(1_000);
      }
      const outageMs = Date.now() - began;
      const attempts = stage.dev.stats().calls.PublishLogs - calls0;
      stage.dev.setFault(undefined);
      // The wait doubled from 0.2 s to the cap (32 intervals = 3.2 s) for each registration, per its own records.
      for (const id of ids) {
        const waits = records(s, 'log publication backs off')
          .filter((r) => r.registration_id === id)
          .map((r) => r.max_wait_ms);
        expect(waits, `${id} backoff`).toEqual([200, 400, 800, 1600, 3200]);
      }
      // At the cap each wait is at least half of it (jitter 50–100%): per registration at most 5 ramp attempts plus
      // one per 1.6 s, whatever the load (a loaded machine only makes fewer). Without the backoff: one per 0.1 s.
      const bound = ids.length * (6 + Math.ceil(outageMs / 1_600));
      expect(attempts, `publish attempts over ${outageMs} ms`).toBeLessThanOrEqual(bound);
      expect(attempts).toBeGreaterThanOrEqual(ids.length * 5);
      await load.stop();
      injector.close();
      await waitFor('every injected log delivered', () => tracker.missing(injector.written).length === 0, {
        timeoutMs: 120_000,
        intervalMs: 500,
        explain: () => s.tail(30),
      });
      await waitFor(
        'every registration back at the normal interval',
        () => ids.every((id) => records(s, 'log publication resumed at the normal interval').some((r) => r.registration_id === id)),
        {
          timeoutMs: 30_000,
          intervalMs: 100,
        },
      );
      // Order per registration: the first delivery of each marker comes in the order the plugin acknowledged them.
      for (const id of ids) {
        const seen = new Set<string>();
        const order: number[] = [];
        for (const l of stage.dev.logs({ tenant: id, logType: 0 })) {
          if (!l.data.includes(INJECTED_NAME)) continue;
          const m = (JSON.parse(l.data) as { marker: string }).marker;
          if (seen.has(m)) continue;
          seen.add(m);
          order.push(Number(m.split('/')[2]));
        }
        expect(order.length).toBe(injector.written.get(id)!.size);
        expect(
          order.every((v, i) => i === 0 || v > order[i - 1]!),
          `${id} in order`,
        ).toBe(true);
      }
      const before = median(rssBefore);
      const peak = Math.max(...rssDuring);
      expect(peak - before, `RSS ${round(before)} MB → peak ${round(peak)} MB during the outage`).toBeLessThan(48);
    } finally {
      await load.stop();
      injector.close();
    }
  });
});
