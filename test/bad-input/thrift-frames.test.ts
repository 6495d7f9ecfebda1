// Issue 9 (bad input): hand-written bad Thrift frames on the manager socket of a running
// bin/osqueryd-sim and on a ThriftServer with a small size cap. Each is refused (the server closes
// that connection, or answers an unknown method with an exception), other connections are served
// meanwhile, and the process stays up. A large request trickled in small pieces must not stall the
// server for everyone else (it used to be re-parsed from its first byte on every chunk).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtensionClient, ExtensionManagerClient } from '../../src/osquery/client.js';
import { ThriftServer } from '../../src/osquery/server.js';
import { ExtensionProcessor, status } from '../../src/osquery/protocol.js';
import { FrameBuilder, MT, RawConnection, T, encode, replyName, replyType } from '../helpers/fuzz-thrift.js';
import { shortTempDir } from '../helpers/tmp.js';
import { SimHarness, type SimProcess } from '../sim/helpers.js';

/** Upper bound for the server to react; generous, it is a hang detector, not a timing. */
const BOUND_MS = 10_000;

let h: SimHarness;
let sim: SimProcess;
let socket: string;

beforeAll(async () => {
  h = new SimHarness();
  const p = h.paths('b');
  ({ sim } = await h.start(p, ['--disable_watchdog']));
  socket = p.socket;
});

afterAll(async () => {
  await h?.cleanup();
});

async function expectServing(): Promise<void> {
  expect(sim.exit).toBeUndefined();
  const c = new ExtensionManagerClient(socket, { timeoutMs: BOUND_MS });
  try {
    expect((await c.ping()).code).toBe(0);
  } finally {
    c.close();
  }
}

async function expectRefused(frame: Buffer): Promise<void> {
  const conn = await RawConnection.connect(socket);
  try {
    await conn.write(frame);
    expect(await conn.waitClosed(BOUND_MS), 'server closes the connection').toBe(true);
  } finally {
    conn.destroy();
  }
  await expectServing();
}

/** A call frame whose request map has an unknown field 9 holding `inner`. */
function callWithExtraField(build: (b: FrameBuilder) => void): Buffer {
  const b = new FrameBuilder()
    .messageBegin('call', MT.CALL, 0)
    .field(T.STRING, 1)
    .string('table')
    .field(T.STRING, 2)
    .string('osquery_info');
  build(b);
  return b.stop().build('extra').bytes;
}

describe('bad Thrift frames on the osqueryd-sim manager socket', () => {
  it('closes a connection that speaks HTTP or a text line', async () => {
    await expectRefused(Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    await expectRefused(Buffer.from('hello\n'));
  });

  it('closes a connection on a bad version word, a negative or oversized string length', async () => {
    const ping = encode.ping(0).bytes;
    const badVersion = Buffer.from(ping);
    badVersion.writeUInt32BE(0x80020001, 0);
    await expectRefused(badVersion);
    const neg = Buffer.from(ping);
    neg.writeInt32BE(-5, 4); // method-name length
    await expectRefused(neg);
    await expectRefused(callWithExtraField((b) => b.field(T.STRING, 9).length(-1)));
    await expectRefused(callWithExtraField((b) => b.field(T.STRING, 9).length(64 * 1024 * 1024 + 1)));
  });

  it('closes a connection on an out-of-range map or list size and on an invalid type byte', async () => {
    await expectRefused(callWithExtraField((b) => b.field(T.MAP, 9).mapBegin(T.STRING, T.STRING, 16 * 1024 * 1024 + 1)));
    await expectRefused(callWithExtraField((b) => b.field(T.LIST, 9).listBegin(T.I32, -1)));
    await expectRefused(callWithExtraField((b) => b.field(T.VOID, 9)));
    await expectRefused(callWithExtraField((b) => b.type(0x7f).i16(9)));
  });

  it('closes a connection on nesting deeper than the skip limit', async () => {
    await expectRefused(
      callWithExtraField((b) => {
        for (let i = 0; i < 200; i++) b.field(T.STRUCT, 1);
        for (let i = 0; i < 200; i++) b.stop();
      }),
    );
    await expectRefused(
      callWithExtraField((b) => {
        b.field(T.LIST, 9);
        for (let i = 0; i < 200; i++) b.listBegin(T.LIST, 1);
        b.listBegin(T.I32, 0);
      }),
    );
  });

  it('answers an unknown method with an exception and keeps the connection', async () => {
    const conn = await RawConnection.connect(socket);
    try {
      await conn.write(new FrameBuilder().messageBegin('noSuchMethod', MT.CALL, 4).field(T.STRING, 1).string('x').stop().build('u').bytes);
      const reply = await conn.waitFor(8, BOUND_MS);
      expect(replyType(reply)).toBe(MT.EXCEPTION);
      expect(replyName(reply)).toBe('noSuchMethod');
      conn.consume();
      await conn.write(encode.ping(5).bytes);
      const pong = await conn.waitFor(8, BOUND_MS);
      expect(replyType(pong)).toBe(MT.REPLY);
      expect(replyName(pong)).toBe('ping');
      expect(conn.closedByPeer).toBe(false);
    } finally {
      conn.destroy();
    }
  });

  it('keeps a truncated frame waiting without blocking other connections, and drops it on close', async () => {
    const conn = await RawConnection.connect(socket);
    try {
      const frame = encode.query('select 1', 0).bytes;
      await conn.write(frame.subarray(0, frame.length - 3));
      await expectServing();
      expect(conn.closedByPeer).toBe(false);
      // The rest completes it: the server answers the query.
      await conn.write(frame.subarray(frame.length - 3));
      const reply = await conn.waitFor(8, BOUND_MS);
      expect(replyName(reply)).toBe('query');
    } finally {
      conn.destroy();
    }
    await expectServing();
  });

  it('serves others while one connection trickles a large request of many small entries', async () => {
    const entries = 400_000;
    const b = new FrameBuilder()
      .messageBegin('call', MT.CALL, 0)
      .field(T.STRING, 1)
      .string('table')
      .field(T.STRING, 2)
      .string('osquery_info')
      .field(T.MAP, 3);
    b.mapBegin(T.STRING, T.STRING, 1);
    b.string('action').string('generate');
    // The many small entries in a field the method does not have (scanned, then skipped): a request map itself is
    // bounded (MAX_REQUEST_ENTRIES, one over it is a bad frame).
    b.field(T.LIST, 4).listBegin(T.STRING, 2 * entries);
    for (let i = 0; i < entries; i++) b.string(`k${i}`).string('v');
    const frame = b.stop().build('big').bytes; // ~6 MiB
    const conn = await RawConnection.connect(socket);
    let pings = 0;
    let sending = true;
    const pinger = (async () => {
      while (sending) {
        await expectServing(); // each ping must answer within BOUND_MS
        pings++;
      }
    })().then(
      () => undefined,
      (err: unknown) => err,
    );
    try {
      for (let off = 0; off < frame.length; off += 16 * 1024) {
        await conn.write(frame.subarray(off, off + 16 * 1024));
        await new Promise((r) => setImmediate(r));
      }
      const reply = await conn.waitFor(8, BOUND_MS * 2);
      expect(replyName(reply)).toBe('call');
    } finally {
      sending = false;
      conn.destroy();
    }
    const pingError = await pinger;
    if (pingError) throw pingError;
    expect(pings).toBeGreaterThan(0);
  });
});

describe('a ThriftServer with a small size cap', () => {
  it('drops a request over maxMessageBytes and keeps serving', async () => {
    const tmp = shortTempDir('bt');
    const path = join(tmp.dir, 'x.sock');
    const server = new ThriftServer(
      path,
      () =>
        new ExtensionProcessor({
          ping: () => status(0, 'OK'),
          call: () => ({ status: status(0, 'OK'), response: [] }),
          shutdown: () => undefined,
        }),
      {
        maxMessageBytes: 64 * 1024,
      },
    );
    await server.listen();
    try {
      const conn = await RawConnection.connect(path);
      const big = encode.call('table', 't', { action: 'generate', context: 'x'.repeat(200 * 1024) }).bytes;
      await conn.write(big).catch(() => undefined);
      expect(await conn.waitClosed(BOUND_MS)).toBe(true);
      conn.destroy();
      const client = new ExtensionClient(path, { timeoutMs: BOUND_MS });
      try {
        expect((await client.ping()).code).toBe(0);
      } finally {
        client.close();
      }
    } finally {
      await server.close();
      tmp.cleanup();
    }
  });
});
