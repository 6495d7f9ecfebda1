// issue 19: integrity check at open (a page overwritten on purpose → the file
// is moved aside, the newest sound backup restored, order kept; no backup →
// a fresh store), and online backups (atomic, 0600, verified, 3 kept).
import { closeSync, existsSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackupScheduler, listBackups } from '../../src/store/backups.js';
import { quickCheck } from '../../src/store/integrity.js';
import { LogBuffer } from '../../src/store/log-buffer.js';
import { openWatchedDatabase, type WatchedDatabase } from '../../src/store/watched-database.js';
import { shortTempDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => void };
let path: string;
let backupDir: string;
let open: WatchedDatabase[] = [];

beforeEach(() => {
  tmp = shortTempDir('ig');
  path = join(tmp.dir, 'launcher.sqlite');
  backupDir = join(tmp.dir, 'backups');
});

afterEach(async () => {
  for (const w of open) await w.close();
  open = [];
  tmp.cleanup();
});

const openDb = (): WatchedDatabase => {
  const w = openWatchedDatabase(path, { backupDir });
  open.push(w);
  return w;
};
const closeDb = async (w: WatchedDatabase): Promise<void> => {
  open = open.filter((x) => x !== w);
  await w.close();
};
const lines = (from: number, to: number): string[] =>
  Array.from({ length: to - from }, (_, i) => JSON.stringify({ seq: from + i, pad: 'q'.repeat(200) }));
const seqs = (b: LogBuffer, reg: string): number[] =>
  b.readBatch(reg, 'result', { limitBytes: 1 << 30 }).logs.map((l) => (JSON.parse(l.data) as { seq: number }).seq);
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** Overwrite pages 2..5 of the (checkpointed, closed) database with garbage: what a torn write or bad sector leaves. */
function corruptPages(file: string): void {
  const size = statSync(file).size;
  expect(size).toBeGreaterThan(6 * 4096);
  const fd = openSync(file, 'r+');
  try {
    for (let page = 1; page < 5; page++) writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, page * 4096);
  } finally {
    closeSync(fd);
  }
}

describe('supervisor database integrity at open (issue 19)', () => {
  it('restores the newest sound backup when a page is corrupt: the bad file is kept aside, log order is kept', async () => {
    let w = openDb();
    const b = new LogBuffer(w.db);
    b.append('acme', 'result', lines(0, 100));
    const backups = new BackupScheduler(w.db, { dir: backupDir });
    const first = await backups.runNow();
    b.append('acme', 'result', lines(100, 150));
    await closeDb(w);
    expect(quickCheck(path)).toBeUndefined();
    corruptPages(path);
    expect(quickCheck(path)).toBeDefined();

    w = openDb();
    expect(w.integrity).toMatchObject({ outcome: 'restored', backup: first });
    expect(w.integrity.problem).toBeTruthy();
    // Kept aside, never deleted.
    expect(existsSync(w.integrity.corruptPath!)).toBe(true);
    expect(quickCheck(w.integrity.corruptPath!)).toBeDefined();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = new LogBuffer(w.db);
    // What the backup held, in order; logs after it are lost (the price of a corrupt file), new ones follow in order.
    expect(seqs(again, 'acme')).toEqual(range(0, 100));
    again.append('acme', 'result', lines(150, 160));
    expect(seqs(again, 'acme')).toEqual([...range(0, 100), ...range(150, 160)]);
  });

  it('skips a corrupt backup for an older sound one', async () => {
    let w = openDb();
    new LogBuffer(w.db).append('acme', 'result', lines(0, 100));
    const s = new BackupScheduler(w.db, { dir: backupDir });
    const older = await s.runNow();
    const newer = await s.runNow();
    await closeDb(w);
    corruptPages(newer);
    corruptPages(path);
    w = openDb();
    expect(w.integrity.outcome).toBe('restored');
    expect(w.integrity.backup).toBe(older);
    expect(w.integrity.badBackups?.map((x) => x.path)).toEqual([newer]);
  });

  it('without a backup starts a fresh store and says so', async () => {
    let w = openDb();
    new LogBuffer(w.db).append('acme', 'result', lines(0, 100));
    await closeDb(w);
    corruptPages(path);
    w = openDb();
    expect(w.integrity.outcome).toBe('fresh');
    expect(existsSync(w.integrity.corruptPath!)).toBe(true);
    expect(seqs(new LogBuffer(w.db), 'acme')).toEqual([]);
    expect(quickCheck(path)).toBeUndefined();
  });

  it('leaves a sound file alone', async () => {
    let w = openDb();
    new LogBuffer(w.db).append('acme', 'result', lines(0, 10));
    await closeDb(w);
    w = openDb();
    expect(w.integrity.outcome).toBe('ok');
    expect(readdirSync(tmp.dir).filter((n) => n.includes('corrupt'))).toEqual([]);
  });
});

describe('online backups (issue 19)', () => {
  it('writes complete 0600 files that pass quick_check, keeps the newest 3, leaves no temp file', async () => {
    const w = openDb();
    const b = new LogBuffer(w.db);
    const s = new BackupScheduler(w.db, { dir: backupDir, keep: 3 });
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      b.append('acme', 'result', lines(i * 10, i * 10 + 10));
      made.push(await s.runNow());
    }
    expect(listBackups(backupDir)).toEqual(made.slice(2).reverse());
    expect(readdirSync(backupDir).sort()).toEqual(
      made
        .slice(2)
        .map((p) => p.slice(backupDir.length + 1))
        .sort(),
    );
    for (const p of listBackups(backupDir)) {
      expect(statSync(p).mode & 0o777).toBe(0o600);
      expect(quickCheck(p)).toBeUndefined();
    }
    await s.stop();
  });

  it('takes the first backup at start when none exists', async () => {
    const w = openDb();
    new LogBuffer(w.db).append('acme', 'result', lines(0, 10));
    const s = new BackupScheduler(w.db, { dir: backupDir, intervalMs: 3_600_000 });
    s.start();
    const { waitFor } = await import('../../bench/reliability/wait.js');
    await waitFor('first backup', () => listBackups(backupDir).length === 1, { timeoutMs: 10_000, intervalMs: 20 });
    await s.stop();
  });
});
