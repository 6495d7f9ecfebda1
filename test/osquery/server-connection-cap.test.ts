/**
 * A peer on an extension socket opening connections and keeping them
 * (each costs the supervisor ~5 KB of RSS plus kernel socket memory, for the
 * 5 min idle timeout; every tenant's servers share the process and its
 * MemoryMax=2G): a server accepts at most maxConnections at once and closes
 * the rest on arrival. Real sockets.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ExtensionClient } from '../../src/osquery/client.js';
import { DEFAULT_MAX_CONNECTIONS } from '../../src/osquery/server.js';
import { listeningServer } from '../helpers/thrift-server.js';
import { waitFor } from '../helpers/tmp.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('ThriftServer: connections bounded', () => {
  it('holds at most maxConnections connections (default DEFAULT_MAX_CONNECTIONS) and serves again once they go', async () => {
    expect(DEFAULT_MAX_CONNECTIONS).toBeGreaterThanOrEqual(64); // osqueryd's and the benches' concurrency fit
    const server = await listeningServer(cleanups, 'cc');

    const N = DEFAULT_MAX_CONNECTIONS + 50;
    const sockets: net.Socket[] = [];
    let closed = 0;
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
    });
    for (let i = 0; i < N; i++) {
      const s = net.createConnection({ path: server.path });
      sockets.push(s);
      s.on('error', () => undefined);
      s.on('close', () => closed++);
      s.write(Buffer.from([0x80])); // the first byte of a message that never completes
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    // Every connection either accepted and counted, or closed by the server.
    await waitFor(() => closed + server.connectionCount === N, 20_000, 'the server to accept or refuse every connection');
    expect({ held: server.connectionCount, refused: closed }).toEqual({ held: DEFAULT_MAX_CONNECTIONS, refused: 50 });

    for (const s of sockets) s.destroy();
    await waitFor(() => server.connectionCount === 0, 10_000, 'the held connections to close');
    const client = new ExtensionClient(server.path);
    cleanups.push(() => client.close());
    expect((await client.ping()).code).toBe(0);
  }, 30_000);
});
