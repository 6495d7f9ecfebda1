import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlClient, StreamOutputOptions } from '../../src/control/client.js';
import type { OutputLineView } from '../../src/control/mapping.js';
import type { ControlServer } from '../../src/control/server.js';
import { ControlCallError } from '../../src/control/call-error.js';
import { waitFor } from '../helpers/tmp.js';
import { FakeTarget, clientFor, makePki, startServer, type Pki } from './fixtures.js';

/** Consume a stream in the background, exposing what arrived so far. */
function reader(client: ControlClient, id: string, options: StreamOutputOptions) {
  const lines: OutputLineView[] = [];
  const done = (async () => {
    for await (const line of client.streamOutput(id, options)) lines.push(line);
  })();
  done.catch(() => undefined);
  return { lines, done };
}

describe('StreamOutput (logs -f)', () => {
  let pki: Pki;
  let server: ControlServer;
  let target: FakeTarget;
  const clients: ControlClient[] = [];
  const client = (name = 'admin'): ControlClient => {
    const c = clientFor(pki, server, name);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    pki = await makePki();
    target = new FakeTarget();
    server = await startServer(pki, target);
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.close();
    pki?.cleanup();
  });

  it('three concurrent followers each receive every line once, in order, while lines are appended', async () => {
    const ring = target.newRun('acme');
    // Three separate clients (separate connections), following from the start of the run.
    const readers = [client(), client('tenant-acme'), client()].map((c) => reader(c, 'acme', { follow: true, fromBeginning: true }));
    const total = 600;
    for (let batch = 0; batch < total / 50; batch++) {
      for (let i = 0; i < 50; i++) {
        const n = batch * 50 + i;
        ring.append(n % 3 === 0 ? 'stderr' : 'stdout', `line ${n}`);
      }
      // Lines keep coming while the readers are mid-stream.
      await waitFor(() => readers.every((r) => r.lines.length >= (batch + 1) * 50 - 25), 10_000, `readers to reach batch ${batch}`);
    }
    ring.close(); // the run ended: followers finish
    await Promise.all(readers.map((r) => r.done));
    for (const r of readers) {
      expect(r.lines).toHaveLength(total);
      expect(r.lines.map((l) => l.seq)).toEqual(Array.from({ length: total }, (_, i) => i));
      expect(r.lines.map((l) => l.text)).toEqual(Array.from({ length: total }, (_, i) => `line ${i}`));
      expect(r.lines.every((l) => l.missed === 0 && l.run_id === ring.runId)).toBe(true);
      expect(r.lines[3]?.stream).toBe('stderr');
      expect(r.lines[4]?.stream).toBe('stdout');
    }
  });

  it('a reader that falls behind the bounded ring is told how many lines it missed', async () => {
    const ring = target.newRun('acme', 100);
    const r = reader(client(), 'acme', { follow: true, fromBeginning: true });
    ring.append('stdout', 'first');
    await waitFor(() => r.lines.length === 1, 10_000, 'the first line');
    // 5,000 lines in one go: the server cannot send while we append, and the
    // ring keeps only the last 100, so this reader must skip.
    for (let i = 1; i <= 5_000; i++) ring.append('stdout', `burst ${i}`);
    ring.close();
    await r.done;
    const missed = r.lines.reduce((sum, l) => sum + l.missed, 0);
    expect(missed).toBeGreaterThan(0);
    expect(r.lines.find((l) => l.missed > 0)?.missed).toBe(4_900);
    // Every line is either received or counted as missed, in order.
    let next = 0;
    for (const l of r.lines) {
      expect(l.seq).toBe(next + l.missed);
      next = l.seq + 1;
    }
    expect(next).toBe(5_001);
    expect(r.lines.at(-1)?.text).toBe('burst 5000');
  });

  it('without --past only new lines arrive; without -f the stream ends once caught up', async () => {
    const ring = target.newRun('globex');
    ring.append('stdout', 'old 1');
    ring.append('stdout', 'old 2');
    const fresh = reader(client(), 'globex', { follow: true, fromBeginning: false });
    // The subscription starts asynchronously: keep adding lines until one arrives.
    await waitFor(
      () => {
        ring.append('stdout', 'tick');
        return fresh.lines.length > 0;
      },
      10_000,
      'a new line',
    );
    expect(fresh.lines.every((l) => l.text === 'tick' && l.seq >= 2)).toBe(true);

    const dump = reader(client(), 'globex', { follow: false, fromBeginning: true });
    await dump.done;
    expect(dump.lines.slice(0, 2).map((l) => l.text)).toEqual(['old 1', 'old 2']);
    expect(dump.lines.map((l) => l.seq)).toEqual(Array.from({ length: ring.nextSeq }, (_, i) => i));
    ring.close();
    await fresh.done;
  });

  it('FAILED_PRECONDITION before the first run; NOT_FOUND for an unknown registration', async () => {
    target.put({ ...target.getInstance('acme')!, id: 'fresh' });
    target.rings.delete('fresh');
    const none = reader(client(), 'fresh', { follow: true });
    await expect(none.done).rejects.toMatchObject({ failure: 'failed-precondition' });
    const unknown = reader(client(), 'nope', { follow: true });
    await expect(unknown.done).rejects.toMatchObject({ failure: 'not-found' });
  });

  it('aborting the signal ends the stream quietly', async () => {
    const ring = target.newRun('acme');
    const ac = new AbortController();
    const r = reader(client(), 'acme', { follow: true, fromBeginning: true, signal: ac.signal });
    ring.append('stdout', 'x');
    await waitFor(() => r.lines.length === 1, 10_000, 'one line');
    ac.abort();
    await r.done; // resolves, no error
    ring.close();
  });

  it('followers get UNAVAILABLE when the server shuts down', async () => {
    const own = new FakeTarget(['acme']);
    const pki2 = await makePki();
    const server2 = await startServer(pki2, own);
    const c = clientFor(pki2, server2, 'admin');
    try {
      const ring = own.ring('acme');
      const r = reader(c, 'acme', { follow: true, fromBeginning: true });
      ring.append('stdout', 'x');
      await waitFor(() => r.lines.length === 1, 10_000, 'one line');
      await server2.close();
      const err = await r.done.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ControlCallError);
      expect((err as ControlCallError).failure).toBe('unavailable');
    } finally {
      c.close();
      await server2.close();
      pki2.cleanup();
    }
  });
});
