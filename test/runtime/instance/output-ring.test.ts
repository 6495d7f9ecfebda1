import { describe, expect, it } from 'vitest';
import { OutputRing, type DeliveredLine } from '../../../src/runtime/instance/output-ring.js';

async function collect(it: AsyncIterable<DeliveredLine>): Promise<DeliveredLine[]> {
  const out: DeliveredLine[] = [];
  for await (const line of it) out.push(line);
  return out;
}

describe('OutputRing', () => {
  it('numbers lines from 0 with stream and time', () => {
    let now = 1000;
    const ring = new OutputRing({ capacity: 4, runId: 'r1', clock: () => now++ });
    ring.append('stdout', 'a');
    ring.append('stderr', 'b');
    expect(ring.runId).toBe('r1');
    expect(ring.read()).toEqual({
      lines: [
        { seq: 0, stream: 'stdout', text: 'a', time: 1000 },
        { seq: 1, stream: 'stderr', text: 'b', time: 1001 },
      ],
      missed: 0,
      nextSeq: 2,
    });
  });

  it('keeps only the newest `capacity` lines and reports what a reader missed', () => {
    const ring = new OutputRing({ capacity: 3 });
    for (let i = 0; i < 10; i++) ring.append('stdout', `l${i}`);
    expect(ring.firstSeq).toBe(7);
    expect(ring.nextSeq).toBe(10);
    const r = ring.read(2);
    expect(r.missed).toBe(5);
    expect(r.lines.map((l) => l.text)).toEqual(['l7', 'l8', 'l9']);
    expect(r.nextSeq).toBe(10);
    // A caught-up cursor reads nothing and stays put.
    expect(ring.read(10)).toEqual({ lines: [], missed: 0, nextSeq: 10 });
    // `max` limits a read.
    expect(ring.read(7, 2).lines.map((l) => l.seq)).toEqual([7, 8]);
  });

  it('cuts over-long lines', () => {
    const ring = new OutputRing({ maxLineLength: 5 });
    const line = ring.append('stdout', 'abcdefghij');
    expect(line?.text).toBe('abcde… [5 characters cut]');
  });

  it('non-follow subscription returns what is there and ends', async () => {
    const ring = new OutputRing();
    ring.append('stdout', 'x');
    ring.append('stdout', 'y');
    const lines = await collect(ring.subscribe({ from: 'beginning', follow: false }));
    expect(lines.map((l) => l.text)).toEqual(['x', 'y']);
    expect(await collect(ring.subscribe({ from: 'now', follow: false }))).toEqual([]);
  });

  it('from "beginning" after eviction reports the lines already gone', async () => {
    const ring = new OutputRing({ capacity: 2 });
    for (let i = 0; i < 5; i++) ring.append('stdout', `l${i}`);
    const lines = await collect(ring.subscribe({ from: 'beginning', follow: false }));
    expect(lines.map((l) => [l.seq, l.missed])).toEqual([
      [3, 3],
      [4, 0],
    ]);
  });

  it('many followers each get every line once, in order, and end on close', async () => {
    const ring = new OutputRing({ capacity: 1000 });
    ring.append('stdout', 'before');
    const readers = [0, 1, 2, 3, 4].map(() => collect(ring.subscribe({ from: 'now' })));
    const total = 500;
    for (let i = 0; i < total; i++) {
      ring.append(i % 2 ? 'stderr' : 'stdout', `line ${i}`);
      if (i % 7 === 0) await new Promise((r) => setImmediate(r)); // let readers interleave
    }
    ring.close();
    for (const lines of await Promise.all(readers)) {
      expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(lines.every((l) => l.missed === 0)).toBe(true);
      expect(lines[0]?.text).toBe('line 0');
    }
  });

  it('a slow reader falls behind without slowing the writer, and is told how many lines it missed', async () => {
    const ring = new OutputRing({ capacity: 10 });
    const fast: DeliveredLine[] = [];
    const fastDone = (async () => {
      for await (const l of ring.subscribe({ from: 'now' })) fast.push(l);
    })();
    const slow = ring.subscribe({ from: 'now' });
    ring.append('stdout', 'l0');
    const first = await slow.next();
    expect(first.value).toMatchObject({ seq: 0, missed: 0 });
    // The slow reader does not read while 100 lines are written (append never waits).
    for (let i = 1; i <= 100; i++) ring.append('stdout', `l${i}`);
    const next = await slow.next();
    expect(next.value).toMatchObject({ seq: 91, missed: 90, text: 'l91' });
    ring.close();
    const rest: DeliveredLine[] = [];
    for (let r = await slow.next(); !r.done; r = await slow.next()) rest.push(r.value);
    expect(rest.map((l) => l.seq)).toEqual([92, 93, 94, 95, 96, 97, 98, 99, 100]);
    await fastDone;
    // Seq numbers plus missed counts always account for every line.
    let expected = 0;
    for (const l of fast) {
      expect(l.seq).toBe(expected + l.missed);
      expected = l.seq + 1;
    }
    expect(expected).toBe(101);
  });

  it('abort ends a waiting follower; appends after close are ignored', async () => {
    const ring = new OutputRing();
    const ac = new AbortController();
    const done = collect(ring.subscribe({ signal: ac.signal }));
    ring.append('stdout', 'one');
    ac.abort();
    // The abort is seen before the woken follower resumes: it stops at once.
    expect(await done).toEqual([]);
    ring.close();
    expect(ring.append('stdout', 'late')).toBeUndefined();
    expect(ring.nextSeq).toBe(1);
    // Subscribing to a closed ring drains it and ends even in follow mode.
    expect((await collect(ring.subscribe({ from: 'beginning', follow: true }))).map((l) => l.text)).toEqual(['one']);
  });

  it('rejects a bad capacity', () => {
    expect(() => new OutputRing({ capacity: 0 })).toThrow(/capacity/);
  });
});
