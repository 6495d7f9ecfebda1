// Issue 2: the Thrift extension protocol, both sides, over real Unix sockets.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { shortTempDir, waitFor } from '../helpers/tmp.js';
import { startMinimalManager, type MinimalManager } from '../helpers/minimal-manager.js';
import { ExtensionClient, ExtensionManagerClient, ExtensionStatusError } from '../../src/osquery/client.js';
import { ExtensionServer } from '../../src/osquery/extension-server.js';
import { ColumnOptions, type TablePlugin, type QueryContext } from '../../src/osquery/plugins.js';
import { isLauncherError } from '../../src/errors.js';

let tmp: ReturnType<typeof shortTempDir>;
let managerPath: string;
let manager: MinimalManager;
const toClose: Array<{ close(): unknown } | { stop(): unknown }> = [];

function table(rows: number, cols = 10, seen?: QueryContext[]): TablePlugin {
  const columns = Array.from({ length: cols }, (_, i) => ({
    name: `c${i}`,
    type: 'TEXT' as const,
    options: i === 0 ? ColumnOptions.INDEX : 0,
  }));
  return {
    kind: 'table',
    name: 'wide',
    columns,
    generate: (ctx) => {
      seen?.push(ctx);
      return Array.from({ length: rows }, (_, r) => Object.fromEntries(columns.map((c, i) => [c.name, `r${r}c${i}`])));
    },
  };
}

beforeEach(async () => {
  tmp = shortTempDir('thr');
  managerPath = join(tmp.dir, 'm.em');
  manager = await startMinimalManager(managerPath);
});

afterEach(async () => {
  for (const c of toClose.splice(0)) await ('stop' in c ? c.stop() : c.close());
  await manager.close();
  tmp.cleanup();
});

describe('ExtensionServer and ExtensionManagerClient', () => {
  it('registers, gets a uuid and listens on <socket>.<uuid>', async () => {
    const ext = new ExtensionServer({ name: 'kolide_grpc', managerPath, plugins: [table(1)], pingIntervalMs: 0 });
    toClose.push(ext);
    const uuid = await ext.start();
    expect(uuid).toBe(100);
    expect(ext.socketPath).toBe(`${managerPath}.100`);
    expect(existsSync(ext.socketPath)).toBe(true);
    const reg = manager.registered.get(100)!;
    expect(reg.info.name).toBe('kolide_grpc');
    expect(reg.registry.table!.wide![0]).toEqual({ id: 'column', name: 'c0', type: 'TEXT', op: '1' });
    // osquery-go sends every kind, some empty.
    expect(Object.keys(reg.registry).sort()).toEqual(['config', 'distributed', 'logger', 'table']);
  });

  it("returns a table plugin's rows through call, with the constraints context", async () => {
    const seen: QueryContext[] = [];
    const ext = new ExtensionServer({ name: 'e1', managerPath, plugins: [table(3, 2, seen)], pingIntervalMs: 0 });
    toClose.push(ext);
    await ext.start();
    const client = new ExtensionClient(ext.socketPath);
    toClose.push(client);
    const ctx =
      '{"constraints":[{"name":"c0","list":[{"op":2,"expr":"r1c0"}],"affinity":"TEXT"},{"name":"c1","list":[],"affinity":"TEXT"}],"colsUsed":["c0"],"colsUsedBitset":18446744073709551615}';
    const res = await client.call('table', 'wide', { action: 'generate', context: ctx });
    expect(res.status.code).toBe(0);
    expect(res.response).toEqual([
      { c0: 'r0c0', c1: 'r0c1' },
      { c0: 'r1c0', c1: 'r1c1' },
      { c0: 'r2c0', c1: 'r2c1' },
    ]);
    expect(seen[0]!.constraints[0]).toEqual({ name: 'c0', affinity: 'TEXT', list: [{ op: 2, expr: 'r1c0' }] });
    expect(seen[0]!.colsUsed).toEqual(['c0']);
    const cols = await client.call('table', 'wide', { action: 'columns' });
    expect(cols.response.map((r) => r.name)).toEqual(['c0', 'c1']);
    const unknown = await client.call('table', 'nope', { action: 'generate' });
    expect(unknown.status.code).toBe(1);
    // And through the manager, as osqueryd would route it.
    const mc = new ExtensionManagerClient(managerPath);
    toClose.push(mc);
    const viaManager = await mc.call('table', 'wide', {});
    expect(viaManager.response).toHaveLength(3);
  });

  it('serves 1,000 sequential calls on one connection and 50 concurrent connections', async () => {
    const ext = new ExtensionServer({ name: 'e2', managerPath, plugins: [table(2)], pingIntervalMs: 0 });
    toClose.push(ext);
    await ext.start();
    const client = new ExtensionClient(ext.socketPath);
    toClose.push(client);
    for (let i = 0; i < 1000; i++) {
      const st = await client.ping();
      expect(st.code).toBe(0);
    }
    const clients = Array.from({ length: 50 }, () => new ExtensionClient(ext.socketPath));
    toClose.push(...clients);
    const results = await Promise.all(clients.map((c) => c.call('table', 'wide', { action: 'generate', context: '{}' })));
    expect(results.every((r) => r.status.code === 0 && r.response.length === 2)).toBe(true);
    await waitFor(() => true);
  });

  it('decodes a reply that arrives in many chunks (1,000 rows x 10 columns)', async () => {
    const ext = new ExtensionServer({ name: 'big', managerPath, plugins: [table(1000, 10)], pingIntervalMs: 0 });
    toClose.push(ext);
    await ext.start();
    const client = new ExtensionClient(ext.socketPath);
    toClose.push(client);
    const res = await client.call('table', 'wide', { action: 'generate', context: '{}' });
    expect(res.response).toHaveLength(1000);
    expect(res.response[999]).toMatchObject({ c0: 'r999c0', c9: 'r999c9' });
  });

  it('answers an unknown method with a TApplicationException', async () => {
    const ext = new ExtensionServer({ name: 'e3', managerPath, plugins: [], pingIntervalMs: 0 });
    toClose.push(ext);
    await ext.start();
    // An extension serves only ping/call/shutdown; `extensions` is a manager method.
    const wrong = new ExtensionManagerClient(ext.socketPath);
    toClose.push(wrong);
    const err = await wrong.extensions().catch((e: unknown) => e);
    expect(isLauncherError(err, 'E_THRIFT_APPLICATION')).toBe(true);
    expect(String((err as Error).message)).toContain('Unknown function extensions');
    expect((await wrong.ping()).code).toBe(0); // the connection (or a new one) still works
  });

  it('closes a connection that sends a truncated or garbage frame, and keeps serving others', async () => {
    const ext = new ExtensionServer({ name: 'e4', managerPath, plugins: [table(1)], pingIntervalMs: 0 });
    toClose.push(ext);
    await ext.start();
    const garbage = [
      Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      Buffer.from([0x80, 0x01, 0x00, 0x01, 0xff, 0xff, 0xff, 0xf0]), // negative name length
      Buffer.from([0x80, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x70, 0x69, 0x6e, 0x67, 0, 0, 0, 0, 0x63, 0x00, 0x01]), // bad field type
    ];
    for (const bytes of garbage) {
      const closed = await new Promise<boolean>((resolve) => {
        const s = net.createConnection(ext.socketPath, () => s.write(bytes));
        s.on('close', () => resolve(true));
        s.on('error', () => undefined);
      });
      expect(closed).toBe(true);
    }
    // A truncated frame just waits; the server stays up for everyone else.
    const partial = net.createConnection(ext.socketPath, () => partial.write(Buffer.from([0x80, 0x01, 0x00])));
    partial.on('error', () => undefined);
    const client = new ExtensionClient(ext.socketPath);
    toClose.push(client);
    expect((await client.ping()).code).toBe(0);
    partial.destroy();
  });

  it('reads a request delivered one byte at a time', async () => {
    const ext = new ExtensionServer({ name: 'e5', managerPath, plugins: [], pingIntervalMs: 0 });
    toClose.push(ext);
    await ext.start();
    const ping = Buffer.from('800100010000000470696e670000000000', 'hex');
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const s = net.createConnection(ext.socketPath, async () => {
        for (const b of ping) {
          s.write(Buffer.from([b]));
          await new Promise((r) => setImmediate(r));
        }
      });
      s.on('data', (d) => {
        chunks.push(d);
        const all = Buffer.concat(chunks);
        if (all.length >= 40) {
          s.destroy();
          resolve(all);
        }
      });
      s.on('error', reject);
    });
    expect(reply.subarray(0, 4).toString('hex')).toBe('80010002');
  });

  it('fails a call that exceeds its timeout cleanly, then recovers', async () => {
    let release!: () => void;
    manager.hooks.query = () => new Promise<void>((r) => (release = r));
    const client = new ExtensionManagerClient(managerPath, { timeoutMs: 200 });
    toClose.push(client);
    const err = await client.query('select 1').catch((e: unknown) => e);
    expect(isLauncherError(err, 'E_THRIFT_TIMEOUT')).toBe(true);
    release();
    manager.hooks.query = undefined;
    expect(await client.query('select 2')).toEqual([{ sql: 'select 2' }]);
  });

  it('reconnects after the manager restarts', async () => {
    const client = new ExtensionManagerClient(managerPath, { timeoutMs: 1000 });
    toClose.push(client);
    expect((await client.ping()).message).toBe('pong');
    await manager.close();
    const err = await client.ping().catch((e: unknown) => e);
    expect(isLauncherError(err)).toBe(true);
    manager = await startMinimalManager(managerPath);
    expect((await client.ping()).message).toBe('pong');
  });

  it('throws a typed error on a non-zero status', async () => {
    const a = new ExtensionServer({ name: 'dup', managerPath, plugins: [], pingIntervalMs: 0 });
    const b = new ExtensionServer({ name: 'dup', managerPath, plugins: [], pingIntervalMs: 0 });
    toClose.push(a, b);
    await a.start();
    const err = await b.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExtensionStatusError);
    expect((err as ExtensionStatusError).status).toEqual({ code: 1, message: 'Duplicate extension registered', uuid: 0 });
    expect(b.state).toBe('stopped');
  });

  it('deregisters on stop and stops by itself when the manager is gone', async () => {
    const ext = new ExtensionServer({ name: 'e6', managerPath, plugins: [], pingIntervalMs: 0 });
    await ext.start();
    expect(manager.registered.size).toBe(1);
    await ext.stop();
    expect(manager.registered.size).toBe(0);
    expect(existsSync(ext.socketPath)).toBe(false);
    expect(await ext.done).toBeUndefined();

    const watched = new ExtensionServer({ name: 'e7', managerPath, plugins: [], pingIntervalMs: 50, timeoutMs: 500 });
    toClose.push(watched);
    await watched.start();
    await manager.close();
    const reason = await watched.done;
    expect(isLauncherError(reason, 'E_THRIFT_CONNECTION')).toBe(true);
    expect(watched.state).toBe('stopped');
    expect(existsSync(watched.socketPath)).toBe(false);
    manager = await startMinimalManager(managerPath);
  });

  it('refuses manager socket paths over 97 bytes', () => {
    const long = join(tmp.dir, 'x'.repeat(120));
    expect(() => new ExtensionServer({ name: 'e', managerPath: long, plugins: [] })).toThrow(/over the 97-byte limit/);
  });
});
