// Review of issue 14: a peer that pipelines requests but does not read its replies must not make the
// server buffer replies without bound. The server reads and answers one request after the other; with
// no regard for the socket's write buffer a ~60-byte table call that answers ~235 KB piles up the
// replies in the server's memory (400 calls: ~94 MB) for as long as the peer keeps sending.
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ThriftServer } from '../../src/osquery/server.js';
import { ExtensionProcessor, response, status } from '../../src/osquery/protocol.js';
import { MessageType } from '../../src/osquery/wire/constants.js';
import { METHODS, writeArgs } from '../../src/osquery/wire/methods.js';
import { FrameScanner } from '../../src/osquery/wire/scanner.js';
import { WireWriter } from '../../src/osquery/wire/writer.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function request(method: string, args: unknown[], seqid: number): Buffer {
  const w = new WireWriter();
  w.messageBegin(method, MessageType.CALL, seqid);
  writeArgs(w, METHODS[method]!, args);
  return w.finish();
}

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
    const tmp = shortTempDir('bp');
    cleanups.push(tmp.cleanup);
    let calls = 0;
    const server = new ThriftServer(
      join(tmp.dir, 'x.sock'),
      new ExtensionProcessor({
        ping: () => status(0, 'OK', 1),
        call: () => {
          calls++;
          return Promise.resolve(response(status(0, 'OK'), ROWS));
        },
        shutdown: () => undefined,
      }),
    );
    await server.listen();
    cleanups.push(() => server.close());

    const socket = net.createConnection({ path: server.path });
    cleanups.push(() => socket.destroy());
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.pause(); // the peer reads nothing

    const N = 400;
    const reqs: Buffer[] = [];
    for (let i = 0; i < N; i++) reqs.push(request('call', ['table', 't', {}], i));
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
