// Review of issue 14: a peer that pipelines requests but does not read its replies must not make the
// server buffer replies without bound. The server reads and answers one request after the other; with
// no regard for the socket's write buffer a ~60-byte table call that answers ~235 KB piles up the
// replies in the server's memory (400 calls: ~94 MB) for as long as the peer keeps sending.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ThriftServer } from '../../src/osquery/server.js';
import { response, status } from '../../src/osquery/protocol.js';
import { FrameScanner } from '../../src/osquery/wire/scanner.js';
import { callFrame, listeningServer } from '../helpers/thrift-server.js';
import { waitFor } from '../helpers/tmp.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ROWS = Array.from({ length: 1000 }, (_, i) => {
  const row: Record<string, string> = {};
  for (let c = 0; c < 10; c++) row[`column_${c}`] = `value ${i} ${c} xxxxxxxx`;
  return row;
});

/** Bytes the server has accepted for writing but the kernel has not taken yet, over its connections. */
function buffered(server: ThriftServer): number {
  const conns = (server as unknown as { connections: Set<{ socket: net.Socket }> }).connections;
  let n = 0;
  for (const c of conns) n += c.socket.writableLength;
  return n;
}

describe('ThriftServer write backpressure (issue 14 review)', () => {
  it('stops reading from a peer that does not read its replies, then serves every request in order', async () => {
    let calls = 0;
    const server = await listeningServer(cleanups, 'bp', {
      call: () => {
        calls++;
        return Promise.resolve(response(status(0, 'OK'), ROWS));
      },
    });

    const socket = net.createConnection({ path: server.path });
    cleanups.push(() => socket.destroy());
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.pause(); // the peer reads nothing

    const N = 400;
    const reqs: Buffer[] = [];
    for (let i = 0; i < N; i++) reqs.push(callFrame('call', ['table', 't', {}], i));
    socket.write(Buffer.concat(reqs));

    // Let the server do whatever it does until it stops making progress.
    let last = -1;
    await waitFor(
      () => {
        const stable = calls === last;
        last = calls;
        return stable || calls === N;
      },
      30_000,
      'the server to stop calling the handler',
      300,
    );
    const held = buffered(server);
    expect(held, `${calls} calls answered, ${held} bytes of replies held in the server`).toBeLessThan(8 * 1024 * 1024);
    expect(calls).toBeLessThan(N);

    // The peer reads again: every reply arrives, in order.
    const scanner = new FrameScanner(64 * 1024 * 1024);
    const seqids: number[] = [];
    socket.on('data', (d: Buffer) => {
      scanner.push(d);
      for (let f = scanner.next(); f; f = scanner.next()) seqids.push(f.seqid);
    });
    socket.resume();
    await waitFor(() => seqids.length === N, 30_000, `all ${N} replies (have ${seqids.length})`);
    expect(seqids).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(calls).toBe(N);
  }, 60_000);
});
