/**
 * The pieces the ThriftServer tests share: a CALL frame as osqueryd writes it, and an extension server on a
 * real Unix socket in a fresh temporary directory, closed (and the directory removed) by the test's cleanups.
 */
import { join } from 'node:path';
import { ExtensionProcessor, response, status, type ExtensionHandler } from '../../src/osquery/protocol.js';
import { ThriftServer, type ThriftServerOptions } from '../../src/osquery/server.js';
import { MessageType } from '../../src/osquery/wire/constants.js';
import { METHODS, writeArgs } from '../../src/osquery/wire/methods.js';
import { WireWriter } from '../../src/osquery/wire/writer.js';
import { shortTempDir } from './tmp.js';

/** One request frame: `method`'s arguments in the IDL's order. */
export function callFrame(method: string, args: unknown[], seqid: number): Buffer {
  const w = new WireWriter();
  w.messageBegin(method, MessageType.CALL, seqid);
  writeArgs(w, METHODS[method]!, args);
  return w.finish();
}

/** Handlers of a server that answers ping and call with OK; a test overrides what it looks at. */
export const okHandler: ExtensionHandler = {
  ping: () => status(0, 'OK', 1),
  call: () => response(status(0, 'OK')),
  shutdown: () => undefined,
};

/** An ExtensionServer-like ThriftServer listening on `x.sock` in a new temporary directory. */
export async function listeningServer(
  cleanups: Array<() => unknown>,
  prefix: string,
  handler: Partial<ExtensionHandler> = {},
  options: ThriftServerOptions = {},
): Promise<ThriftServer> {
  const tmp = shortTempDir(prefix);
  cleanups.push(tmp.cleanup);
  const server = new ThriftServer(join(tmp.dir, 'x.sock'), new ExtensionProcessor({ ...okHandler, ...handler }), options);
  await server.listen();
  cleanups.push(() => server.close());
  return server;
}
