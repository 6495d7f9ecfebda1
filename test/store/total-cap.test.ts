// issue 19: a total byte cap across every log buffer (oldest first, fair
// across registrations, counted per registration), with the database file's
// size bounded while logs keep coming past the cap, and space given back
// once the buffers drain (incremental vacuum).
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogBuffer } from '../../src/store/log-buffer.js';
import { fairShares } from '../../src/store/fair-share.js';
import { openWatchedDatabase, type WatchedDatabase } from '../../src/store/watched-database.js';
import { waitFor } from '../../bench/reliability/wait.js';
import { shortTempDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => void };
let w: WatchedDatabase;
let path: string;

beforeEach(() => {
  tmp = shortTempDir('tc');
  path = join(tmp.dir, 'launcher.sqlite');
  w = openWatchedDatabase(path, { reclaim: { intervalMs: 50, thresholdBytes: 256 * 1024 } });
});

afterEach(async () => {
  await w.close();
  tmp.cleanup();
});

const CAP = 4 * 1024 * 1024;
const payload = (reg: string, i: number): string => JSON.stringify({ reg, i, pad: 'x'.repeat(1000) });
const seqOf = (data: string): number => (JSON.parse(data) as { i: number }).i;
const fileBytes = (): number => {
  let n = 0;
  for (const p of [path, `${path}-wal`]) {
    try {
      n += statSync(p).size;
    } catch {
      // no WAL right now
    }
  }
  return n;
};

describe('fairShares (issue 19)', () => {
  it('brings the largest holders down to one level and never takes more than one holds', () => {
    expect(fairShares([100, 10, 10], 50)).toEqual([50, 0, 0]);
    expect(fairShares([100, 80, 10], 50)).toEqual([35, 15, 0]);
    expect(fairShares([5, 5], 100)).toEqual([5, 5]);
    expect(fairShares([5, 5], 0)).toEqual([0, 0]);
  });
});

describe('log buffers: total byte cap (issue 19)', () => {
  it('drops the oldest logs of the noisiest registrations first, counts them per registration, keeps order, and bounds the file', async () => {
    const b = new LogBuffer(w.db, { maxTotalBytes: CAP });
    const regs = ['noisy1', 'noisy2', 'quiet'];
    const next: Record<string, number> = { noisy1: 0, noisy2: 0, quiet: 0 };
    let peakFile = 0;
    // 10x the cap through the noisy registrations, a trickle through the quiet one.
    for (let round = 0; round < 400; round++) {
      for (const reg of regs) {
        const n = reg === 'quiet' ? (round % 20 === 0 ? 1 : 0) : 50;
        const lines = Array.from({ length: n }, () => payload(reg, next[reg]++));
        if (lines.length) b.append(reg, 'result', lines);
      }
      if (round % 20 === 0) {
        peakFile = Math.max(peakFile, fileBytes());
        // This loop never yields, so the checkpoint worker (ADR 0009, which bounds the WAL) cannot run: checkpoint here.
        w.db.pragma('wal_checkpoint(TRUNCATE)');
      }
    }
    const stats = regs.map((r) => b.stats(r, 'result'));
    const total = stats.reduce((s, x) => s + x.bytes, 0);
    expect(total).toBeLessThanOrEqual(CAP);
    expect(total).toBeGreaterThan(CAP * 0.9);
    // The quiet registration kept everything; the noisy ones paid, each counted.
    expect(stats[2]!.count).toBe(next.quiet);
    expect(stats[2]!.droppedCap).toBe(0);
    expect(stats[0]!.droppedCap).toBeGreaterThan(0);
    expect(stats[1]!.droppedCap).toBeGreaterThan(0);
    expect(stats[0]!.count + stats[0]!.droppedCap).toBe(next.noisy1);
    // What is left is the newest, in order, without gaps.
    for (const reg of regs) {
      const got = b.readBatch(reg, 'result', { limitBytes: 64 * 1024 * 1024 }).logs.map((l) => seqOf(l.data));
      expect(got).toEqual(Array.from({ length: got.length }, (_, i) => next[reg]! - got.length + i));
    }
    // 40 MiB written; database + WAL stay within a small multiple of the cap.
    peakFile = Math.max(peakFile, fileBytes());
    expect(peakFile).toBeLessThan(CAP * 4);
    // The counters survive a reopen.
    const counted = stats[0]!.droppedCap;
    await w.close();
    w = openWatchedDatabase(path, { reclaim: { intervalMs: 50, thresholdBytes: 256 * 1024 } });
    expect(new LogBuffer(w.db, { maxTotalBytes: CAP }).stats('noisy1', 'result').droppedCap).toBe(counted);
  });

  it('gives the space back once the buffers drained', async () => {
    const b = new LogBuffer(w.db, { maxTotalBytes: CAP });
    for (let i = 0; i < 40; i++)
      b.append(
        'a',
        'result',
        Array.from({ length: 100 }, (_, j) => payload('a', i * 100 + j)),
      );
    expect(w.db.pragma('auto_vacuum', { simple: true })).toBe(2);
    for (;;) {
      const batch = b.readBatch('a', 'result', { limitBytes: 1024 * 1024 });
      if (batch.logs.length === 0) break;
      b.ack(
        'a',
        'result',
        batch.logs.map((l) => l.id),
      );
    }
    w.db.pragma('wal_checkpoint(TRUNCATE)');
    const full = statSync(path).size;
    expect(full).toBeGreaterThan(CAP / 2);
    await waitFor('free pages given back', () => (w.db.pragma('freelist_count', { simple: true }) as number) < 64, {
      timeoutMs: 20_000,
      intervalMs: 20,
    });
    w.db.pragma('wal_checkpoint(TRUNCATE)');
    expect(statSync(path).size).toBeLessThan(full / 4);
  });
});
