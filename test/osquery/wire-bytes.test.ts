// Issue 2: our bytes on the wire, pinned against the encoding in
// docs/protocol/osquery-extensions.md#binary-encoding (bytes: #ping-example), independently of the
// thrift library: strict-write binary protocol, unframed, no length prefix.
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { join } from 'node:path';
import { shortTempDir } from '../helpers/tmp.js';
import { ExtensionManagerClient } from '../../src/osquery/client.js';
import { ThriftServer } from '../../src/osquery/server.js';
import { ExtensionManagerProcessor, extensionInfo, response, status, type ExtensionManagerHandler } from '../../src/osquery/protocol.js';

const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex');
const str = (s: string) => Buffer.concat([Buffer.from([0, 0, 0, s.length]), Buffer.from(s)]).toString('hex');

// ping CALL, seqid 0: 80 01 00 01 | 00 00 00 04 "ping" | 00 00 00 00 | 00
const PING_CALL = hex(`80010001 ${str('ping')} 00000000 00`);
// osqueryd's REPLY: field 0 = ExtensionStatus {1: code 0, 2: "pong", 3: uuid 0}
const PING_REPLY = hex(`80010002 ${str('ping')} 00000000 0c0000 08000100000000 0b0002${str('pong')} 0a00030000000000000000 00 00`);

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function manager(overrides: Partial<ExtensionManagerHandler> = {}): ExtensionManagerHandler {
  return {
    ping: () => status(0, 'pong'),
    call: () => response(status(0, 'OK')),
    shutdown: () => undefined,
    extensions: () => ({}),
    options: () => ({}),
    registerExtension: () => status(0, 'OK', 1),
    deregisterExtension: () => status(0, 'OK'),
    query: () => response(status(0, 'OK')),
    getQueryColumns: () => response(status(0, 'OK')),
    ...overrides,
  };
}

describe('wire format', () => {
  it('client sends a ping exactly as the reference encodes it and decodes the reference reply', async () => {
    const tmp = shortTempDir('wb');
    cleanups.push(tmp.cleanup);
    const path = join(tmp.dir, 'm.em');
    const received: Buffer[] = [];
    const raw = net.createServer((s) => {
      s.on('data', (d) => {
        received.push(d);
        if (Buffer.concat(received).length >= PING_CALL.length) s.write(PING_REPLY);
      });
    });
    await new Promise<void>((r) => raw.listen(path, r));
    cleanups.push(() => new Promise((r) => raw.close(r)));
    const client = new ExtensionManagerClient(path);
    cleanups.push(() => client.close());
    const st = await client.ping();
    expect(Buffer.concat(received).toString('hex')).toBe(PING_CALL.toString('hex'));
    expect(st).toEqual({ code: 0, message: 'pong', uuid: 0 });
  });

  it('server replies to the reference ping byte for byte', async () => {
    const tmp = shortTempDir('wb');
    cleanups.push(tmp.cleanup);
    const path = join(tmp.dir, 'm.em');
    const server = new ThriftServer(path, () => new ExtensionManagerProcessor(manager()));
    await server.listen();
    cleanups.push(() => server.close());
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const s = net.createConnection(path, () => s.write(PING_CALL));
      s.on('data', (d) => {
        chunks.push(d);
        const all = Buffer.concat(chunks);
        if (all.length >= PING_REPLY.length) {
          s.destroy();
          resolve(all);
        }
      });
      s.on('error', reject);
    });
    expect(reply.toString('hex')).toBe(PING_REPLY.toString('hex'));
  });

  it('accepts an old-style (non-strict) message header, as osqueryd reads leniently', async () => {
    const tmp = shortTempDir('wb');
    cleanups.push(tmp.cleanup);
    const path = join(tmp.dir, 'm.em');
    const server = new ThriftServer(path, () => new ExtensionManagerProcessor(manager()));
    await server.listen();
    cleanups.push(() => server.close());
    // name length, name, i8 type CALL, i32 seqid 7, empty args struct
    const oldStyle = hex(`${str('ping')} 01 00000007 00`);
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const s = net.createConnection(path, () => s.write(oldStyle));
      s.on('data', (d) => {
        s.destroy();
        resolve(d);
      });
      s.on('error', reject);
    });
    // Replies are always strict, echoing the seqid.
    expect(reply.subarray(0, 16).toString('hex')).toBe(`80010002${str('ping')}00000007`);
  });

  it('encodes i64 uuids as decimal numbers, also as map keys (extensions())', async () => {
    const tmp = shortTempDir('wb');
    cleanups.push(tmp.cleanup);
    const path = join(tmp.dir, 'm.em');
    let sentBytes = Buffer.alloc(0);
    const server = new ThriftServer(
      path,
      () =>
        new ExtensionManagerProcessor(
          manager({
            extensions: () => ({ '23817': extensionInfo({ name: 'kolide_grpc', version: '1.0' }) }),
          }),
        ),
    );
    await server.listen();
    cleanups.push(() => server.close());
    const client = new ExtensionManagerClient(path);
    cleanups.push(() => client.close());
    const list = await client.extensions();
    expect([...list.keys()]).toEqual([23817]);
    expect(list.get(23817)).toEqual({ name: 'kolide_grpc', version: '1.0', sdk_version: '', min_sdk_version: '' });
    // And on the raw wire: map(I64 -> STRUCT) with key 0x5d09.
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const s = net.createConnection(path, () => s.write(hex(`80010001 ${str('extensions')} 00000000 00`)));
      s.on('data', (d) => {
        sentBytes = Buffer.concat([sentBytes, d]);
        if (sentBytes.length > 40) {
          s.destroy();
          resolve(sentBytes);
        }
      });
      s.on('error', reject);
    });
    expect(reply.toString('hex')).toContain(`0d0000 0a0c 00000001 0000000000005d09`.replace(/ /g, ''));
  });
});
