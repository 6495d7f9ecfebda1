// issue 14: the ThriftServer's connection handling on a real Unix socket, with raw clients:
// osqueryd's connection-per-call pattern, requests pipelined on one connection answered in order
// (one at a time, even when the first handler is async and the second sync), a half-closed peer
// still answered, a request trickled in byte by byte, and the idle sweep that replaced the
// per-connection timer.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ThriftServer } from '../../src/osquery/server.js';
import { status, response } from '../../src/osquery/protocol.js';
import { MessageType } from '../../src/osquery/wire/constants.js';
import { FrameScanner, type Frame } from '../../src/osquery/wire/scanner.js';
import { callFrame, listeningServer } from '../helpers/thrift-server.js';
import { waitFor } from '../helpers/tmp.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(idleTimeoutMs?: number): Promise<ThriftServer> {
  let calls = 0;
  return listeningServer(
    cleanups,
    'sc',
    {
      ping: () => status(0, 'OK', 7),
      // Async, and slower than the ping behind it: its reply must still go out first.
      call: () => new Promise((resolve) => setImmediate(() => setImmediate(() => resolve(response(status(0, `call ${++calls}`)))))),
    },
    idleTimeoutMs === undefined ? {} : { idleTimeoutMs },
  );
}

/** A raw client: collects reply frames and notes when the server closed the connection. */
function rawClient(path: string): { socket: net.Socket; frames: Frame[]; closed: () => boolean; ready: Promise<void> } {
  const socket = net.createConnection({ path });
  cleanups.push(() => socket.destroy());
  const scanner = new FrameScanner(1 << 20);
  const frames: Frame[] = [];
  let closed = false;
  socket.on('data', (d: Buffer) => {
    scanner.push(d);
    for (let f = scanner.next(); f; f = scanner.next()) frames.push(f);
  });
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  return { socket, frames, closed: () => closed, ready: new Promise((r) => socket.once('connect', () => r())) };
}

describe('ThriftServer connections (issue 14)', () => {
  it('serves osqueryd-style connection-per-call pings and leaks no connection', async () => {
    const server = await serve();
    for (let i = 0; i < 100; i++) {
      const c = rawClient(server.path);
      await c.ready;
      c.socket.write(callFrame('ping', [], 0));
      await waitFor(() => c.frames.length === 1, 5_000, `ping reply on connection ${i}`);
      expect([c.frames[0]!.name, c.frames[0]!.type]).toEqual(['ping', MessageType.REPLY]);
      c.socket.end();
    }
    await waitFor(() => server.connectionCount === 0, 5_000, 'every connection closed');
  });

  it('answers pipelined requests in order, an async call before the sync ping behind it', async () => {
    const server = await serve();
    const c = rawClient(server.path);
    await c.ready;
    c.socket.write(
      Buffer.concat([
        callFrame('call', ['table', 't', {}], 1),
        callFrame('ping', [], 2),
        callFrame('call', ['table', 't', {}], 3),
        callFrame('ping', [], 4),
      ]),
    );
    await waitFor(() => c.frames.length === 4, 5_000, 'four replies');
    expect(c.frames.map((f) => [f.name, f.seqid])).toEqual([
      ['call', 1],
      ['ping', 2],
      ['call', 3],
      ['ping', 4],
    ]);
  });

  it('answers what a half-closed peer sent (an async call, then a ping), then closes', async () => {
    const server = await serve();
    const c = rawClient(server.path);
    await c.ready;
    c.socket.end(Buffer.concat([callFrame('call', ['table', 't', {}], 5), callFrame('ping', [], 6)]));
    await waitFor(() => c.closed(), 5_000, 'the server closed the connection');
    expect(c.frames.map((f) => [f.name, f.seqid])).toEqual([
      ['call', 5],
      ['ping', 6],
    ]);
  });

  it('serves a request trickled in one byte at a time', async () => {
    const server = await serve();
    const c = rawClient(server.path);
    await c.ready;
    const bytes = callFrame('call', ['table', 'name with ünïcode', { action: 'generate', context: '{"constraints":[]}' }], 9);
    for (let i = 0; i < bytes.length; i++) {
      c.socket.write(bytes.subarray(i, i + 1));
      if (i % 16 === 0) await new Promise((r) => setImmediate(r)); // let chunks arrive separately
    }
    await waitFor(() => c.frames.length === 1, 5_000, 'the reply');
    expect([c.frames[0]!.name, c.frames[0]!.seqid]).toEqual(['call', 9]);
  });

  it('closes a connection idle past idleTimeoutMs and keeps a busy one', async () => {
    const server = await serve(200);
    const idle = rawClient(server.path);
    const busy = rawClient(server.path);
    await Promise.all([idle.ready, busy.ready]);
    let seqid = 0;
    // The busy connection pings until the idle one is closed (bounded by waitFor).
    await waitFor(
      async () => {
        const before = busy.frames.length;
        busy.socket.write(callFrame('ping', [], ++seqid));
        await waitFor(() => busy.frames.length > before, 5_000, 'busy ping reply');
        return idle.closed();
      },
      10_000,
      'the idle connection closed',
      50,
    );
    expect(busy.closed()).toBe(false);
  });
});
