/**
 * The "bare Node" floor of bench/thrift-peers: a node:net server on a Unix
 * socket that answers every request with a reply encoded once at start-up (no
 * framing, no decoding, no handler, no per-call allocation). What it costs is
 * what Node's own socket machinery costs: accepting a connection, reading a
 * request, one write, closing. Its table reply is the same 1000x10 bytes the
 * project sends, so the client's calls/s against it is the client's own bound
 * (reading and decoding 235 KB) for that scenario.
 *
 * The method is told from the request's first chunk only: "ping" → the ping
 * reply; "call" on the "table" registry → the table reply; any other call → a
 * canned OK response (the logger calls, without any store). It assumes a
 * request arrives in one read and the next is not sent before the reply, which
 * holds for the bench's synchronous C++ client (one flush per call, requests
 * well under the socket buffer); it is not a Thrift server. Replies carry
 * seqid 0, as the C++ client sends.
 *
 * Connections are handled as cheaply as documented node:net allows (the same
 * choices as src/osquery/server.ts where they are the cheaper ones: see ADR
 * 0026): allowHalfOpen with destroy() on the peer's FIN.
 *
 * Prints `{"socket": path}` once serving; SIGTERM stops it.
 * Usage: node bare-server.js --dir TMPDIR
 */
import net from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_ROWS, BENCH_UUID } from '../thrift-fixture.js';
import { MessageType } from '../../src/osquery/wire/constants.js';
import { METHODS, writeResult } from '../../src/osquery/wire/methods.js';
import { WireWriter } from '../../src/osquery/wire/writer.js';
import { response, status } from '../../src/osquery/protocol.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const dir = arg('dir');
if (!dir) throw new Error('bare-server: --dir is required');
const path = join(dir, 'bare.sock');

function encode(method: string, value: unknown): Buffer {
  const m = METHODS[method]!;
  const w = new WireWriter();
  w.messageBegin(m.name, MessageType.REPLY, 0);
  writeResult(w, m, value);
  // finish() may hand out its scratch for a large message: copy, so every reply has its own bytes.
  return Buffer.from(w.finish());
}

// The same replies the project's server sends for these requests.
const PING = encode('ping', status(0, 'OK', BENCH_UUID));
const TABLE = encode('call', response(status(0, 'OK'), BENCH_ROWS));
const OK = encode('call', response(status(0, 'OK')));

// Request layout: i32 version|type, i32 name length, name, i32 seqid, then for call field 1 (type byte,
// i16 id, i32 length) and the registry name: byte 8 is the method's first letter, byte 23 the registry's.
function reply(chunk: Buffer): Buffer | undefined {
  if (chunk.length < 12 || chunk[0] !== 0x80 || chunk[1] !== 0x01) return undefined; // not a message start
  if (chunk[8] === 0x70 /* p */) return PING;
  return chunk.length > 23 && chunk[23] === 0x74 /* t */ ? TABLE : OK;
}

rmSync(path, { force: true });
const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  socket.on('data', (chunk: Buffer) => {
    const r = reply(chunk);
    if (r) socket.write(r);
  });
  socket.on('end', () => socket.destroy());
  socket.on('error', () => undefined);
});
server.listen(path, () => process.stdout.write(`${JSON.stringify({ socket: path })}\n`));

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  // Connections left open by a killed client must not hold the exit.
  setTimeout(() => process.exit(0), 1000).unref();
});
