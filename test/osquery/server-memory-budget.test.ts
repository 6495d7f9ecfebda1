/**
 * maxMessageBytes bounds one connection's incomplete request; a peer on an
 * extension socket opening many connections, each holding a request just
 * under it, made the server hold their sum (64 MiB each by default, twice
 * that in buffer capacity; the supervisor's unit has MemoryMax=2G and every
 * tenant's servers share its heap). A server holds at most maxMessageBytes of
 * incomplete requests over all its connections: a connection that would pass
 * it is closed, and the server still serves. Real sockets.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ExtensionClient } from '../../src/osquery/client.js';
import type { ThriftServer } from '../../src/osquery/server.js';
import { MessageType, T } from '../../src/osquery/wire/constants.js';
import { WireWriter } from '../../src/osquery/wire/writer.js';
import { listeningServer } from '../helpers/thrift-server.js';
import { waitFor } from '../helpers/tmp.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A call whose field 1 declares a string of `declared` bytes: `sent` bytes of it follow (never all of them). */
function partialCall(declared: number, sent: number): Buffer {
  const w = new WireWriter();
  w.messageBegin('call', MessageType.CALL, 1);
  w.fieldBegin(T.STRING, 1);
  w.i32(declared);
  const head = w.finish();
  return Buffer.concat([head, Buffer.alloc(sent, 0x61)]);
}

/** Bytes of incomplete requests each connection's scanner holds. */
function held(server: ThriftServer): number[] {
  const conns = (server as unknown as { connections: Set<{ scanner?: { buffered: number } }> }).connections;
  return [...conns].map((c) => c.scanner?.buffered ?? 0);
}

describe('ThriftServer: incomplete requests bounded over all connections', () => {
  it('closes connections that would make the server hold more than maxMessageBytes in all', async () => {
    const max = 1024 * 1024;
    const server = await listeningServer(cleanups, 'mb', {}, { maxMessageBytes: max });

    const N = 8;
    const each = Math.floor(max * 0.9);
    const closed = new Set<number>();
    for (let i = 0; i < N; i++) {
      const s = net.createConnection({ path: server.path });
      cleanups.push(() => s.destroy());
      s.on('error', () => undefined);
      s.on('close', () => closed.add(i));
      s.write(partialCall(10 * max, each));
    }
    // Every connection either closed or wholly read by the server.
    await waitFor(
      () => closed.size + held(server).filter((n) => n >= each).length === N,
      20_000,
      'the server to read or refuse every connection',
    );
    const total = held(server).reduce((a, b) => a + b, 0);
    expect({ open: N - closed.size, overBudget: total > max }).toEqual({ open: 1, overBudget: false });

    // Still serving.
    const client = new ExtensionClient(server.path);
    cleanups.push(() => client.close());
    expect((await client.ping()).code).toBe(0);
  }, 30_000);
});
