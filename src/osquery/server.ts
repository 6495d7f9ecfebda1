import net from 'node:net';
import { rm } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { LauncherError, errorMessage } from '../errors.js';
import { checkUnixSocketPath } from './socket-path.js';
import { InputBufferUnderrunError, makeReceiver, makeWriteTransport, newProtocol } from './protocol.js';

type ProcessorLike = { process(input: unknown, output: unknown): void };

export interface ThriftServerOptions {
  /** Largest request, in bytes, buffered before the connection is dropped. */
  maxMessageBytes?: number;
  /** A connection silent this long is closed (ms; 0 disables). */
  idleTimeoutMs?: number;
  logger?: Logger;
}

/**
 * A Thrift server on a Unix socket, on the `thrift` runtime's buffered
 * transport and binary protocol (unframed, as osqueryd). Unlike the runtime's
 * own createServer it tracks connections (so close() ends them), bounds the
 * bytes a connection may buffer, drops idle connections, and turns a bad frame
 * into a closed connection and a log line instead of an 'error' event.
 *
 * Many concurrent connections and many sequential calls per connection are
 * served: osqueryd opens a new connection per call, osquery-go keeps one.
 */
export class ThriftServer {
  readonly path: string;
  private readonly server: net.Server;
  private readonly connections = new Set<net.Socket>();
  private readonly log: Logger;
  private listening = false;
  private closing: Promise<void> | undefined;

  constructor(path: string, makeProcessor: () => ProcessorLike, options: ThriftServerOptions = {}) {
    checkUnixSocketPath(path);
    this.path = path;
    this.log = options.logger ?? silentLogger();
    const maxBytes = options.maxMessageBytes ?? 64 * 1024 * 1024;
    const idle = options.idleTimeoutMs ?? 5 * 60_000;
    this.server = net.createServer((socket) => this.serve(socket, makeProcessor(), maxBytes, idle));
    this.server.on('error', (err) => this.log.error({ err, path }, 'thrift server error'));
  }

  /** Remove a stale socket file, then listen. */
  async listen(): Promise<void> {
    await rm(this.path, { force: true });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(new LauncherError('E_THRIFT_CONNECTION', `listen on ${this.path}: ${err.message}`, { cause: err }));
      this.server.once('error', onError);
      this.server.listen(this.path, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.listening = true;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stop accepting, end every connection, remove the socket file. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const socket of this.connections) socket.destroy();
      if (this.listening) {
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
      }
      await rm(this.path, { force: true }).catch(() => undefined);
    })();
    return this.closing;
  }

  private serve(socket: net.Socket, processor: ProcessorLike, maxBytes: number, idleMs: number): void {
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'thrift connection error'));
    if (idleMs > 0) {
      socket.setTimeout(idleMs, () => socket.destroy());
    }
    const write = (buf: Buffer) => {
      if (!socket.destroyed) socket.write(buf);
    };
    const receive = makeReceiver(
      (t) => {
        const input = newProtocol(t);
        const output = newProtocol(makeWriteTransport(write));
        try {
          for (;;) {
            processor.process(input, output);
            t.commitPosition();
          }
        } catch (err) {
          if (err instanceof InputBufferUnderrunError) {
            t.rollbackPosition();
            return;
          }
          this.log.warn({ path: this.path, err: errorMessage(err) }, 'bad thrift frame; closing connection');
          socket.destroy();
        }
      },
      maxBytes,
    );
    socket.on('close', () => receive.cancel());
    socket.on('data', (data: Buffer) => {
      try {
        receive(data);
      } catch (err) {
        this.log.warn({ path: this.path, err: errorMessage(err) }, 'thrift request too large; closing connection');
        socket.destroy();
      }
    });
  }
}
