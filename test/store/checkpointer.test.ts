// The checkpoint worker (ADR 0009, ADR 0023): PASSIVE checkpoints while writes go on, the WAL started over in its
// own blocks once a checkpoint has copied every frame, a RESTART only when writes never pause, and an empty WAL
// left behind when the worker goes idle. Real file, real worker thread.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startCheckpointer, type Checkpointer } from '../../src/store/checkpointer.js';
import { openDatabase, type SqliteDatabase } from '../../src/store/database.js';
import { isBusy } from '../../src/store/busy.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => void };
let path: string;
let db: SqliteDatabase;
let ck: Checkpointer | undefined;

beforeEach(() => {
  tmp = shortTempDir('ck');
  path = join(tmp.dir, 'launcher.sqlite');
  db = openDatabase(path);
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, data TEXT NOT NULL)');
});

afterEach(async () => {
  await ck?.stop();
  ck = undefined;
  db.close();
  tmp.cleanup();
});

const walSize = (): number => {
  try {
    return statSync(`${path}-wal`).size;
  } catch {
    return 0;
  }
};
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ROW = 'x'.repeat(1000);

describe('checkpoint worker', () => {
  it('keeps the WAL bounded under bursts, loses no row, and leaves an empty WAL once idle', async () => {
    const threshold = 256 * 1024;
    const max = 2 * 1024 * 1024;
    ck = startCheckpointer(db, path, { thresholdBytes: threshold, maxWalBytes: max, intervalMs: 10, idleExitMs: 300 });
    expect(db.pragma('journal_size_limit', { simple: true }), 'the WAL keeps its blocks when it starts over').toBe(-1);
    const insert = db.prepare('INSERT INTO t (data) VALUES (?)');
    let written = 0;
    let busy = 0;
    let peak = 0;
    // ~20 MiB of WAL frames (one ~1 KiB row per transaction), in bursts with pauses between them, as osqueryd logs.
    for (let burst = 0; burst < 40; burst++) {
      for (let i = 0; i < 100; i++) {
        try {
          insert.run(ROW);
          written++;
        } catch (err) {
          if (!isBusy(err)) throw err;
          busy++; // a RESTART held the write lock: the supervisor's writers retry (busy.ts); here the row is skipped
        }
      }
      peak = Math.max(peak, walSize());
      await pause(15);
    }
    expect(ck.active, 'a worker ran while the WAL grew').toBe(true);
    // 4000 one-row transactions write ~20 MiB of frames: a WAL that never started over would be that large
    // (typically the peak is ~maxWalBytes; the bound is loose because the worker's start-up takes a while).
    expect(peak, 'the WAL started over in its own blocks while writes went on').toBeLessThan(10 * 1024 * 1024);
    await waitFor(() => !ck!.active, 20_000, 'the idle worker to exit');
    expect(walSize(), 'the idle worker truncated the WAL').toBe(0);
    expect(db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(written);
    expect(written + busy).toBe(4000);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  });

  it('after a burst, a trickle of commits is not checkpointed one by one: the worker goes idle and exits', async () => {
    ck = startCheckpointer(db, path, { thresholdBytes: 512 * 1024, intervalMs: 10, idleExitMs: 300 });
    const insert = db.prepare('INSERT INTO t (data) VALUES (?)');
    for (let i = 0; i < 600; i++) insert.run(ROW);
    await waitFor(() => ck!.active, 20_000, 'a worker for the burst');
    // Then one commit every 50 ms (a few osqueryds logging every second; the threshold is seconds away): the
    // worker's quiet-tick checkpoint is for a burst's tail only; one at every pause here would keep it
    // checkpointing, and alive, for as long as the trickle goes.
    let written = 600;
    const trickle = setInterval(() => {
      try {
        insert.run(ROW);
        written++;
      } catch (err) {
        // The idle exit's TRUNCATE held the write lock for a moment: the supervisor's writers retry; here it is skipped.
        if (!isBusy(err)) throw err;
      }
    }, 50);
    try {
      await waitFor(() => !ck!.active, 20_000, 'the worker to go idle while the trickle goes on');
    } finally {
      clearInterval(trickle);
    }
    expect(written - 600, 'commits came while the worker went idle').toBeGreaterThan(0);
    expect(db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(written);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  });

  it('starts a worker again when the WAL grows after an idle exit', async () => {
    ck = startCheckpointer(db, path, { thresholdBytes: 64 * 1024, intervalMs: 10, idleExitMs: 100 });
    const insert = db.prepare('INSERT INTO t (data) VALUES (?)');
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 200; i++) insert.run(ROW);
      expect(walSize()).toBeGreaterThan(64 * 1024);
      // The automatic checkpoint is off: only a worker empties the WAL.
      await waitFor(() => !ck!.active && walSize() === 0, 20_000, `a worker and its idle exit (round ${round})`);
    }
    expect(db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(400);
  });
});
