// Issue 9 (faults): the disk. Two places matter.
//
// 1. A registration's osqueryd database directory
//    (<root>/registrations/<id>/osquery.db) read-only, or on a full
//    filesystem: osqueryd cannot start. The supervisor must say why (status
//    and log), back off instead of relaunching in a tight loop, leave the other
//    registrations alone, and recover once the directory is usable.
// 2. The supervisor's own SQLite file (log buffers, node keys, history) on a
//    full filesystem: appends fail, and so do the DELETEs that acknowledge a
//    published batch. Logs the buffer cannot take must be refused visibly, a
//    batch the server accepted must not be sent again and again, no instance
//    may be restarted, and everything acknowledged must be delivered once
//    there is room again.
//
// Real faults where the kernel lets us (tmpfs and read-only bind mounts need
// CAP_SYS_ADMIN; see support/mounts.ts). Without it: a file in place of the
// database directory (EEXIST/ENOTDIR instead of EROFS), and the supervisor's
// SQLite capped at its size and filled to SQLITE_FULL instead of a full disk
// (the "full" registration of part 1 is then skipped). The read-only phase of
// part 2 always uses SQLite's query_only: remounting a filesystem read-only
// fails (EBUSY) while the supervisor holds its database open for writing.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { recordFigures } from '../../bench/reliability/figures.js';
import { DeliveryTracker, LogInjector, extensionSocket } from '../../bench/reliability/log-traffic.js';
import { pause, waitFor } from '../../bench/reliability/wait.js';
import type { BackoffOptions } from '../../src/runtime/backoff.js';
import type { RegistrationStatus } from '../../src/runtime/supervisor.js';
import { AppHarness, FAST_RUNNER } from './support/app-harness.js';
import { bindReadOnly, fillUp, mountTmpfs, mountsPermitted, run, sqliteFillUp, sqliteUnfill, unmount } from './support/mounts.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

const MOUNTS = mountsPermitted();
const SCHEDULED = 'reliability_clock';
const BACKOFF: Partial<BackoffOptions> = { initialMs: 200, maxMs: 1_600, multiplier: 2, jitter: 0.2, stableAfterMs: 60_000 };

let h: AppHarness | undefined;
const mounted: string[] = [];

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && h) process.stderr.write(`${h.logTail(200)}\n`);
  const report = await h?.stop({ keep: true });
  for (const m of mounted.splice(0).reverse()) unmount(m);
  if (h) rmSync(h.dir, { recursive: true, force: true });
  h = undefined;
  expect(report?.leaked ?? [], 'osqueryd processes alive after the app stopped').toEqual([]);
});

describe('osqueryd database directory unusable', () => {
  it(`backs off, says why, spares the others and recovers (${MOUNTS.ok ? 'read-only bind mount and full tmpfs' : `no mounts: ${MOUNTS.reason}; a file in place of the directory`})`, async () => {
    const broken = MOUNTS.ok ? ['readonly', 'full'] : ['readonly'];
    h = await AppHarness.start({
      registrations: ['kolide', ...broken],
      runner: { backoff: BACKOFF },
      prepareRoot: (root) => {
        const dir = (id: string) => join(root, 'registrations', id);
        for (const id of broken) mkdirSync(dir(id), { recursive: true });
        if (MOUNTS.ok) {
          bindReadOnly(dir('readonly'));
          mounted.push(dir('readonly'));
          mountTmpfs(dir('full'), 256 * 1024);
          mounted.push(dir('full'));
          fillUp(join(dir('full'), 'filler'));
        } else {
          writeFileSync(join(dir('readonly'), 'osquery.db'), 'not a directory\n');
        }
      },
    });
    const hh = h;
    const vendor = await hh.waitHealthy('kolide');

    const figures: Record<string, unknown> = { mounts: MOUNTS.reason };
    for (const id of broken) {
      // Enough failures to reach the backoff cap.
      // Read in backoff: the failed run is still the current one then.
      const looping = await waitFor(
        `${id} to fail 6 launches`,
        () => (hh.status(id).restarts >= 5 && hh.status(id).state === 'backoff' ? hh.status(id) : undefined),
        {
          timeoutMs: 60_000,
          intervalMs: 50,
          explain: () => JSON.stringify(hh.status(id)),
        },
      );
      expect(looping.healthy).toBe(false);
      expect(looping.crash_loop, `${id} reported as a crash loop`).toBe(true);
      // The delays grow (×2, ±20 % jitter) up to the cap: never a tight loop.
      const delays = looping.recent_delays_ms;
      for (let i = 1; i < Math.min(delays.length, 4); i++)
        expect(delays[i]!, `${id} delays ${delays.join(', ')}`).toBeGreaterThan(delays[i - 1]!);
      expect(Math.max(...delays)).toBeGreaterThanOrEqual(BACKOFF.maxMs! * (1 - BACKOFF.jitter!));
      // Status says why osqueryd could not start, not only that it exited.
      expect(looping.last_error, `${id} last_error`).toMatch(/database/i);
      // (The stand-in is Node: its recursive mkdir reports a read-only mount as ENOENT, not EROFS.)
      const cause = MOUNTS.ok
        ? id === 'readonly'
          ? /EROFS|read-only file system|ENOENT/
          : /disk is full|ENOSPC/
        : /EEXIST|ENOTDIR|not a directory/;
      expect(looping.last_error).toMatch(cause);
      expect(looping.last_error).toContain(join('registrations', id, 'osquery.db'));
      // And so does the log.
      expect(hh.logs.some((l) => l.includes(`"registration_id":"${id}"`) && l.includes('Could not initialize database plugin'))).toBe(true);

      // Restarts over a bounded window at the cap: no more than the backoff allows.
      const windowMs = 5_000;
      const before = hh.status(id).restarts;
      await pause(windowMs);
      const launches = hh.status(id).restarts - before;
      const allowed = Math.ceil(windowMs / (BACKOFF.maxMs! * (1 - BACKOFF.jitter!))) + 1;
      expect(launches, `${id} launches in ${windowMs} ms at the backoff cap`).toBeLessThanOrEqual(allowed);
      figures[id] = { launches_in_window: launches, window_ms: windowMs, allowed, delays_ms: delays, last_error: looping.last_error };
    }

    // Make the directories usable again: each comes back on its next backoff launch.
    if (MOUNTS.ok) {
      for (const m of mounted.splice(0).reverse()) unmount(m);
    } else {
      rmSync(join(hh.root, 'registrations', 'readonly', 'osquery.db'), { force: true });
    }
    for (const id of broken) await hh.waitHealthy(id, 30_000);
    // The vendor instance never noticed.
    expect(hh.status('kolide')).toMatchObject({ pid: vendor.pid, run_id: vendor.run_id, restarts: 0 });
    recordFigures('osqueryd-database-unusable', figures);
  }, 180_000);
});

describe('supervisor database full, then read-only', () => {
  it(`refuses what it cannot buffer, visibly; never resends an accepted batch it cannot delete; recovers without a restart (${MOUNTS.ok ? 'full tmpfs root' : 'SQLite capped and filled'}, then SQLite query_only)`, async () => {
    const ids = ['kolide', 'acme'];
    let filler = '';
    h = await AppHarness.start({
      registrations: ids,
      tenantConfig: () => ({ schedule: { [SCHEDULED]: { query: 'select unix_time from time', interval: 1, snapshot: true } } }),
      config: { log_buffer: { publish_interval_seconds: 0.1 } },
      // After a failed genConfig osqueryd asks again after 1 s (--config_accelerated_refresh).
      runner: { flagTimings: { ...FAST_RUNNER.flagTimings, configAcceleratedRefresh: 1 } },
      prepareRoot: (root) => {
        if (!MOUNTS.ok) return;
        mkdirSync(root, { recursive: true });
        mountTmpfs(root, 48 * 1024 * 1024);
        mounted.push(root);
        // osqueryd's own databases stay off the full filesystem: this part is about the supervisor's.
        const outside = join(root, '..', 'registrations');
        mkdirSync(outside, { recursive: true });
        mkdirSync(join(root, 'registrations'));
        run('mount', ['--bind', outside, join(root, 'registrations')]);
        mounted.push(join(root, 'registrations'));
      },
      // No config is ever cached (RequestConfig fails until the disk is full), and no log is
      // accepted before the read-only phase (so nothing is deleted to make room while full).
      beforeApp: (dev) => dev.setFault({ mode: 'http500', methods: ['RequestConfig', 'PublishLogs'] }),
    });
    const hh = h;
    const dev = hh.dev;
    const db = hh.app.db;
    const before = new Map<string, RegistrationStatus>();
    for (const id of ids) before.set(id, await hh.waitHealthy(id));
    const tracker = new DeliveryTracker(dev);
    const injector = new LogInjector('diskfull');
    const socketOf = (id: string) => extensionSocket(hh.socketDir, hh.status(id).run_id!)!;
    const lastErrors = () =>
      ids.map((id) => (hh.status(id).extension as { lastError?: { operation: string; message: string } } | null)?.lastError);
    const errorRecords = () => hh.logs.filter((l) => l.startsWith('{"level":50'));
    const untouched = () => {
      for (const id of ids)
        expect(hh.status(id), `${id} after the fault`).toMatchObject({ pid: before.get(id)!.pid, restarts: 0, healthy: true });
    };
    await waitFor(
      'enrolled, config requested and refused',
      () => ids.every((id) => dev.nodes(id).length === 1) && dev.stats().calls.RequestConfig >= ids.length,
      {
        timeoutMs: 30_000,
      },
    );
    const schedule = async (id: string) =>
      (await hh.app.runner.query(rid(id), 'select name from osquery_schedule', 10_000)).map((r) => r.name);
    for (const id of ids) expect(await schedule(id), `${id} has no config yet`).toEqual([]);

    // 1. Full, while the server takes no logs (so nothing is deleted to make room). The server's
    //    config still reaches osqueryd although it cannot be cached; every log osqueryd sends is
    //    refused (it is told so), and the supervisor says why, once.
    if (MOUNTS.ok) {
      filler = join(hh.root, 'filler');
      fillUp(filler);
    } else {
      sqliteFillUp(db);
    }
    const refused0 = injector.refused;
    const errors0 = errorRecords().length;
    dev.setFault({ mode: 'down', methods: ['PublishLogs'] }); // RequestConfig answers again
    for (const id of ids) {
      await waitFor(`${id} config served uncached while the disk is full`, async () => (await schedule(id)).includes(SCHEDULED), {
        timeoutMs: 30_000,
        intervalMs: 250,
        explain: () => JSON.stringify(hh.status(id).extension),
      });
    }
    // On a full filesystem caching that config really failed (the WAL cannot grow; few writes
    // happened before, so SQLite has no checkpointed WAL space to reuse). Inside a capped SQLite
    // file the small cache row may still fit in a page, so there it is only recorded.
    const cacheWriteFailed = hh.logs.some((l) => l.includes('cannot cache the config; serving it uncached'));
    if (MOUNTS.ok) expect(cacheWriteFailed, 'the config cache write failed on the full disk').toBe(true);
    for (let i = 0; i < 20; i++) {
      for (const id of ids) await injector.inject(id, socketOf(id), 5);
      await pause(100);
    }
    const refusedWhileFull = injector.refused - refused0;
    expect(refusedWhileFull, 'logs refused while the disk is full').toBeGreaterThan(0);
    for (const e of lastErrors()) {
      expect(e, 'extension lastError while full').toMatchObject({
        operation: expect.stringMatching(/^(log_buffer|config_cache)$/),
        message: expect.stringMatching(/disk is full/),
      });
    }
    const fullErrors = errorRecords().slice(errors0);
    expect(
      fullErrors.some((l) => l.includes('disk is full')),
      'an error record names the full disk',
    ).toBe(true);
    expect(fullErrors.length, 'error records while full (one per registration, not one per refused log)').toBeLessThanOrEqual(ids.length);
    untouched();
    if (MOUNTS.ok) rmSync(filler, { force: true });
    else sqliteUnfill(db);

    // 2. Read-only while a batch is in flight: the server accepts it, the buffer cannot delete it.
    dev.setFault({ mode: 'slow', delayMs: 1_000, methods: ['PublishLogs'] });
    for (const id of ids) expect(await injector.inject(id, socketOf(id), 100)).toBe(100);
    await waitFor('a PublishLogs call in flight', () => dev.stats().inFlightByMethod.PublishLogs > 0, { timeoutMs: 10_000 });
    db.pragma('query_only = 1');
    dev.setFault(undefined);
    tracker.poll();
    const duplicates0 = tracker.duplicates;
    const served0 = dev.stats().served.PublishLogs;
    // 30 publish intervals with the buffer read-only.
    const readOnlyMs = 3_000;
    const until = Date.now() + readOnlyMs;
    while (Date.now() < until) {
      for (const id of ids) await injector.inject(id, socketOf(id), 2);
      await pause(100);
    }
    tracker.poll();
    const duplicatesWhileReadOnly = tracker.duplicates - duplicates0;
    const publishesWhileReadOnly = dev.stats().served.PublishLogs - served0;
    expect(
      lastErrors().some((e) => /readonly/.test(e?.message ?? '')),
      `extension lastError while read-only: ${JSON.stringify(lastErrors())}`,
    ).toBe(true);
    // A batch the server accepted is not sent again and again while it cannot be deleted.
    expect(duplicatesWhileReadOnly, `duplicates stored while read-only (${publishesWhileReadOnly} PublishLogs served)`).toBe(0);
    untouched();

    // 3. Writable again: everything acknowledged is delivered, still without a restart.
    db.pragma('query_only = 0');
    for (const id of ids) expect(await injector.inject(id, socketOf(id), 50)).toBe(50);
    await waitFor('every acknowledged log delivered', () => tracker.missing(injector.written).length === 0, {
      timeoutMs: 30_000,
      intervalMs: 200,
      explain: () => `${tracker.missing(injector.written).length} of ${injector.total} missing`,
    });
    untouched();

    recordFigures('supervisor-database-full-read-only', {
      full_method: MOUNTS.ok ? 'tmpfs root filled to ENOSPC' : 'SQLite capped at its size (max_page_count) and filled to SQLITE_FULL',
      config_served_while_full: true,
      config_cache_write_failed: cacheWriteFailed,
      read_only_method: 'SQLite query_only on the supervisor connection (a remount would fail with EBUSY on open files)',
      logs_refused_while_full: refusedWhileFull,
      error_records_while_full: fullErrors.length,
      read_only_ms: readOnlyMs,
      publishes_while_read_only: publishesWhileReadOnly,
      duplicates_while_read_only: duplicatesWhileReadOnly,
      logs_written: injector.total,
      logs_delivered: tracker.total,
      duplicates_total: tracker.duplicates,
      restarts: ids.map((id) => hh.status(id).restarts),
    });
  }, 120_000);
});
