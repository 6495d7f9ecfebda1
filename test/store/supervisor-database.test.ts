// The supervisor's SQLite file against a real `bin/launcher run` process
// (issue 13): another process holding the write lock must not freeze the
// supervisor, the root and the database files are private whatever the umask,
// and a database deleted while running is recreated from what the supervisor
// still holds.
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, chmodSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ExtensionClient } from '../../src/osquery/client.js';
import { LauncherProcess } from '../../bench/reliability/launcher-process.js';
import { DeliveryTracker, INJECTED_NAME, extensionSocket } from '../../bench/reliability/log-traffic.js';
import { OSQUERYD_SIM_QUIET } from '../../bench/reliability/paths.js';
import { Stage } from '../../bench/reliability/stage.js';
import { waitFor } from '../../bench/reliability/wait.js';

const LOCK_HOLD_MS = 10_000;
const DRIVER = createRequire(import.meta.url).resolve('better-sqlite3');

let stage: Stage | undefined;
const sups: LauncherProcess[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await new Promise((r) => c.once('exit', r));
    }
  }
  for (const s of sups.splice(0)) await s.stop();
  await stage?.cleanup();
  stage = undefined;
});

function start(s: Stage, ids = s.registrations): LauncherProcess {
  const sup = LauncherProcess.start({
    dir: s.dir,
    root: s.root,
    deviceUrl: s.dev.url,
    registrations: ids,
    control: s.control,
    osquerydPath: OSQUERYD_SIM_QUIET,
    config: { log_buffer: { publish_interval_seconds: 0.2 } },
  });
  sups.push(sup);
  return sup;
}

/**
 * Another process (node + better-sqlite3) that takes `BEGIN IMMEDIATE` on
 * the database, says "locked", holds it LOCK_HOLD_MS by its own clock, then
 * commits and says "released". Events land in `events` in arrival order.
 */
function holdLock(path: string, events: string[]): { locked: Promise<void>; released: Promise<void> } {
  const src = `
    const Database = require(${JSON.stringify(DRIVER)});
    const db = new Database(${JSON.stringify(path)});
    db.pragma('busy_timeout = 10000');
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); process.stdout.write('released\\n'); }, ${LOCK_HOLD_MS});
  `;
  const child = spawn(process.execPath, ['-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let onLocked!: () => void;
  let onReleased!: () => void;
  const locked = new Promise<void>((r) => (onLocked = r));
  const released = new Promise<void>((r) => (onReleased = r));
  child.stdout!.on('data', (d: Buffer) => {
    for (const word of d.toString().split('\n').filter(Boolean)) {
      events.push(`holder:${word}`);
      if (word === 'locked') onLocked();
      if (word === 'released') onReleased();
    }
  });
  return { locked, released };
}

/** osqueryd's side of a logger call: one marker, resent until the plugin acknowledges it (osqueryd retries its buffer). */
class RetryingLogger {
  readonly acked = new Map<string, Set<string>>();
  refusals = 0;
  private seq = 0;
  constructor(
    private readonly id: string,
    private readonly socket: () => string,
  ) {}

  async send(count: number, until: () => boolean = () => false): Promise<void> {
    const client = new ExtensionClient(this.socket(), { timeoutMs: 5_000 });
    const set = this.acked.get(this.id) ?? new Set<string>();
    this.acked.set(this.id, set);
    try {
      for (let i = 0; i < count && !until(); i++) {
        const marker = `lock/${this.id}/${this.seq++}`;
        const line = JSON.stringify({ name: INJECTED_NAME, marker, unixTime: 0, action: 'added', columns: { marker } });
        for (let attempt = 0; attempt < 10_000; attempt++) {
          const res = await client.call('logger', 'kolide_grpc', { string: line, category: 'event' });
          if (res.status?.code === 0) break;
          this.refusals++;
        }
        set.add(marker);
      }
    } finally {
      client.close();
    }
  }
}

describe('supervisor database', () => {
  // issue 13: a write lock held by another process froze the event loop (busy_timeout 5000, synchronous writes).
  it('answers extension calls and the control API while another process holds BEGIN IMMEDIATE; nothing is lost after', async () => {
    stage = await Stage.create({ prefix: 'sl', registrations: ['kolide', 'acme'] });
    const s = stage;
    const sup = start(s);
    const ready = await sup.waitHealthy(s.ids);
    const socketOf = (id: string) => () => extensionSocket(s.socketDir, ready.get(id)!.run_id!)!;
    const tracker = new DeliveryTracker(s.dev);
    const logger = new RetryingLogger('acme', socketOf('acme'));
    await logger.send(20);

    const events: string[] = [];
    const holder = holdLock(join(s.root, 'launcher.sqlite'), events);
    await holder.locked;
    let releasedSeen = false;
    void holder.released.then(() => (releasedSeen = true));
    // Writes keep coming while the lock is held: logs (refused, resent), publisher deletes, history.
    const sending = logger.send(1_000, () => releasedSeen);
    sending.catch(() => undefined); // awaited below; a probe failing first must not leave it unhandled
    const vendor = new ExtensionClient(socketOf('kolide')(), { timeoutMs: 30_000 });
    try {
      for (let round = 0; round < 3; round++) {
        const ping = await vendor.ping();
        events.push(`ping:${ping.code}`);
        const table = await vendor.call('table', 'kolide_launcher_registrations', { action: 'generate', context: '{"constraints":[]}' });
        events.push(`table:${table.status?.code}:${table.response?.length}`);
        const list = await sup.client.listInstances();
        events.push(`list:${list.length}`);
        const one = await sup.client.getInstance('acme');
        events.push(`get:${one.id}`);
      }
    } finally {
      vendor.close();
    }
    await holder.released;
    await sending;
    const released = events.indexOf('holder:released');
    const probes = events.filter((e) => !e.startsWith('holder:'));
    expect(probes).toEqual(Array.from({ length: 3 }, () => ['ping:0', 'table:0:2', 'list:2', 'get:acme']).flat());
    // Every probe was answered while the other process still held the lock.
    expect(events.slice(0, released).filter((e) => !e.startsWith('holder:'))).toEqual(probes);
    expect(events.indexOf('holder:locked')).toBe(0);
    // Logs met the lock and were refused to the sender (it resent them), not silently dropped.
    expect(logger.refusals).toBeGreaterThan(0);

    // After the release: writes land again, and every acknowledged log is delivered exactly as sent.
    await logger.send(20);
    const acked = logger.acked.get('acme')!.size;
    await waitFor('every acknowledged log delivered', () => tracker.missing(logger.acked).length === 0, {
      timeoutMs: 60_000,
      intervalMs: 200,
      explain: () => `${tracker.missing(logger.acked).length} of ${acked} missing\n${sup.tail(30)}`,
    });
    expect(tracker.delivered.get('acme')!.size).toBe(acked);
    const runs = await sup.client.history('acme', 5);
    expect(runs[0]!.pid).toBeGreaterThan(0);
    expect(sup.running).toBe(true);
  }, 180_000);

  // issue 13: a root made beforehand 0755 stayed 0755 and launcher.sqlite was 0644.
  it('makes a pre-made 0755 root 0700 and the database files 0600, under umask 000', async () => {
    stage = await Stage.create({ prefix: 'sm', registrations: ['kolide'] });
    mkdirSync(stage.root, { mode: 0o755 });
    chmodSync(stage.root, 0o755);
    const old = process.umask(0);
    let sup: LauncherProcess;
    try {
      sup = start(stage);
    } finally {
      process.umask(old);
    }
    await sup.waitHealthy(stage.ids);
    const mode = (p: string) => statSync(p).mode & 0o777;
    expect(mode(stage.root).toString(8)).toBe('700');
    const db = join(stage.root, 'launcher.sqlite');
    for (const p of [db, `${db}-wal`, `${db}-shm`]) {
      expect(existsSync(p), p).toBe(true);
      expect(mode(p).toString(8), p).toBe('600');
    }
    expect(sup.records().some((r) => r.msg === 'root directory was not private; made it 0700' && r.mode === '0755')).toBe(true);
  }, 120_000);

  // issue 13: a root the supervisor does not own cannot be made private: refuse, naming path and mode.
  it('refuses a root owned by another user with an error naming the path and mode', async () => {
    stage = await Stage.create({ prefix: 'so', registrations: ['kolide'] });
    mkdirSync(stage.root, { mode: 0o755 });
    chmodSync(stage.root, 0o755);
    if (process.getuid?.() !== 0) return; // chown to another user needs root; the CI and dev machines run as root
    chownSync(stage.root, 65534, 65534);
    const sup = start(stage);
    await waitFor('the supervisor to refuse and exit', () => !sup.running, {
      timeoutMs: 30_000,
      intervalMs: 50,
      explain: () => sup.tail(20),
    });
    expect((await sup.exited).code).not.toBe(0);
    expect(sup.tail(40)).toContain(`root directory ${stage.root} (mode 0755) is owned by uid 65534`);
    expect(existsSync(join(stage.root, 'launcher.sqlite'))).toBe(false);
  }, 60_000);

  // issue 13: deleting launcher.sqlite while running went unnoticed; after a restart runtime-enrolled tenants and node keys were gone.
  it('recreates a deleted database from the running supervisor: a runtime-enrolled tenant comes back with its node key', async () => {
    stage = await Stage.create({ prefix: 'sd', registrations: ['kolide', 'globex'] });
    const s = stage;
    const vendorOnly = s.registrations.filter((r) => r.id === 'kolide');
    const first = start(s, vendorOnly);
    await first.waitHealthy(['kolide']);
    await first.client.addRegistration({ id: 'globex', enrollSecret: 'secret-globex' });
    await first.waitHealthy(['kolide', 'globex']);
    await waitFor('globex enrolled', () => first.records().some((r) => r.msg === 'enrolled' && r.registration_id === 'globex'), {
      timeoutMs: 30_000,
      intervalMs: 100,
      explain: () => first.tail(40),
    });
    const enrollments = s.dev.stats().calls.RequestEnrollment;
    const runsBefore = (await first.client.history('globex', 20)).length;

    const db = join(s.root, 'launcher.sqlite');
    for (const p of [db, `${db}-wal`, `${db}-shm`]) rmSync(p, { force: true });
    await waitFor(
      'the deletion detected and the database recreated',
      () => (first.msgCounts.get('supervisor database recreated; writes continue in the new file') ?? 0) > 0,
      {
        timeoutMs: 30_000,
        intervalMs: 100,
        explain: () => first.tail(30),
      },
    );
    expect(first.records().some((r) => r.level === 50 && String(r.msg).includes('database file was deleted while running'))).toBe(true);
    expect(existsSync(db)).toBe(true);
    expect((statSync(db).mode & 0o777).toString(8)).toBe('600');
    await first.stop();

    const second = start(s, vendorOnly);
    const live = await second.waitHealthy(['kolide', 'globex']);
    const vendor = new ExtensionClient(extensionSocket(s.socketDir, live.get('kolide')!.run_id!)!, { timeoutMs: 10_000 });
    try {
      const rows =
        (await vendor.call('table', 'kolide_launcher_registrations', { action: 'generate', context: '{"constraints":[]}' })).response ?? [];
      expect(rows.find((r) => r.registration_id === 'globex')).toMatchObject({ origin: 'runtime', enrolled: '1' });
    } finally {
      vendor.close();
    }
    // The node key came back with it: the device server saw no second enrollment.
    await waitFor('globex config fetched by the new run', () => s.dev.stats().calls.RequestConfig > 0, { timeoutMs: 10_000 });
    expect(s.dev.stats().calls.RequestEnrollment).toBe(enrollments);
    // Run history survived too (the first supervisor's runs plus the new one).
    expect((await second.client.history('globex', 20)).length).toBeGreaterThan(runsBefore);
  }, 180_000);
});
