/**
 * A peer on an extension socket sending a `call` whose request map has
 * millions of tiny entries: ~13 bytes on the wire each, but a property on a
 * JS object when decoded (measured: 4 M entries, 52 MB, 4.4 s of CPU on the
 * one event loop every tenant's servers share, 300 MB of heap). osqueryd's
 * plugin requests carry a handful of keys; one over MAX_REQUEST_ENTRIES is a
 * bad frame: the connection is closed before any decoding, the handler is
 * not called, and other connections are served. Real sockets.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ExtensionClient } from '../../src/osquery/client.js';
import { response, status } from '../../src/osquery/protocol.js';
import { MAX_REQUEST_ENTRIES } from '../../src/osquery/wire/constants.js';
import { callFrame, listeningServer } from '../helpers/thrift-server.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function callRequest(entries: number, seqid: number): Buffer {
  const req: Record<string, string> = {};
  for (let i = 0; i < entries; i++) req[`k${i}`] = '';
  return callFrame('call', ['logger', 'x', req], seqid);
}

/** Send `bytes`; resolves with whether the server closed the connection (and how many reply bytes came first). */
function send(path: string, bytes: Buffer): Promise<{ closed: boolean; replyBytes: number }> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path });
    let replyBytes = 0;
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      replyBytes += d.length;
      // A reply: the request was served, the connection stays open.
      s.destroy();
      resolve({ closed: false, replyBytes });
    });
    s.on('close', () => resolve({ closed: true, replyBytes }));
    s.write(bytes);
  });
}

describe('ThriftServer: request maps bounded', () => {
  it('closes a connection whose call request has more than MAX_REQUEST_ENTRIES entries, without calling the handler', async () => {
    const seen: number[] = [];
    const server = await listeningServer(cleanups, 'rm', {
      call: (_registry, _item, request) => {
        seen.push(Object.keys(request).length);
        return response(status(0, 'OK'));
      },
    });

    expect(await send(server.path, callRequest(MAX_REQUEST_ENTRIES, 1))).toMatchObject({ closed: false });
    expect(await send(server.path, callRequest(MAX_REQUEST_ENTRIES + 1, 2))).toEqual({ closed: true, replyBytes: 0 });
    expect(await send(server.path, callRequest(200_000, 3))).toEqual({ closed: true, replyBytes: 0 });
    expect(seen).toEqual([MAX_REQUEST_ENTRIES]);

    // Other connections are served.
    const client = new ExtensionClient(server.path);
    cleanups.push(() => client.close());
    expect((await client.call('logger', 'x', { string: 'line', category: 'event' })).status.code).toBe(0);
    expect(seen).toEqual([MAX_REQUEST_ENTRIES, 2]);
  });
});
