import net from 'node:net';
import { rm } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { LauncherError, errorMessage } from '../errors.js';
import { checkUnixSocketPath } from './socket-path.js';
import type { Processor } from './processor.js';
import { FrameScanner } from './wire/scanner.js';

/**
 * Connections a server holds at once by default; more are closed on arrival. osqueryd opens one per call (a
 * few at a time), osquery-go keeps one, the benches 64. A peer keeping thousands open cost the process every
 * tenant shares ~5 KB of RSS each (plus kernel socket memory) for the idle timeout.
 */
export const DEFAULT_MAX_CONNECTIONS = 256;

export interface ThriftServerOptions {
  /**
   * Largest request, in bytes, buffered before the connection is dropped; also the most bytes of incomplete
   * requests held over all the server's connections together (many connections, each under the bound, are refused).
   */
  maxMessageBytes?: number;
  /** A connection silent this long is closed (ms; 0 disables). */
  idleTimeoutMs?: number;
  /** Connections held at once; more are closed on arrival. Default DEFAULT_MAX_CONNECTIONS. */
  maxConnections?: number;
  logger?: Logger;
}

/**
 * A Thrift server on a Unix socket: binary protocol, unframed, as osqueryd.
 * It tracks connections (so close() ends them), bounds the bytes a connection
 * may buffer, drops idle connections, and turns a bad frame into a closed
 * connection and a log line.
 *
 * Many concurrent connections and many sequential calls per connection are
 * served: osqueryd opens a new connection per call, osquery-go keeps one. A
 * connection costs a few listeners and one small object until its first byte
 * arrives; requests on one connection are answered one after the other, in
 * order, each with a single socket write. A peer that half-closes still gets
 * the answers to what it sent; then the connection is closed.
 */
export class ThriftServer {
  readonly path: string;
  private readonly server: net.Server;
  private readonly connections = new Set<ServerConnection>();
  readonly log: Logger;
  readonly maxBytes: number;
  private readonly idleMs: number;
  /** Idle sweeps done so far: the connections' clock (no clock read per byte or reply). */
  epoch = 0;
  /** Bytes of incomplete requests held over all connections (each connection's scanner). */
  held = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private listening = false;
  private closing: Promise<void> | undefined;

  /** `processor`: one shared by every connection, or a factory called per connection. */
  constructor(path: string, processor: Processor | (() => Processor), options: ThriftServerOptions = {}) {
    checkUnixSocketPath(path);
    this.path = path;
    this.log = options.logger ?? silentLogger();
    this.maxBytes = options.maxMessageBytes ?? 64 * 1024 * 1024;
    this.idleMs = options.idleTimeoutMs ?? 5 * 60_000;
    const pick = typeof processor === 'function' ? processor : () => processor;
    // allowHalfOpen: on the peer's FIN (osqueryd closes after each call) the socket is destroyed at
    // once when nothing is left to write, without Node's shutdown(2) round trip first.
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => {
      const conn = new ServerConnection(this, socket, pick());
      this.connections.add(conn);
      socket.on('close', () => {
        this.connections.delete(conn);
        conn.release();
      });
    });
    this.server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.server.on('drop', () =>
      this.log.debug({ path, max: this.server.maxConnections }, 'thrift connection refused: too many connections'),
    );
    this.server.on('error', (err) => this.log.error({ err, path }, 'thrift server error'));
  }

  /** Remove a stale socket file, then listen. */
  async listen(): Promise<void> {
    await rm(this.path, { force: true });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) =>
        reject(new LauncherError('E_THRIFT_CONNECTION', `listen on ${this.path}: ${err.message}`, { cause: err }));
      this.server.once('error', onError);
      this.server.listen(this.path, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.listening = true;
    if (this.idleMs > 0) {
      // One sweep for all connections instead of a timer per connection (re-armed on every
      // read), and the sweeps are the clock: a connection notes the sweep count at each read and
      // reply, and one silent for `limit` sweeps (at least idleMs) is closed, within idleMs + idleMs/4.
      const every = Math.max(5, Math.floor(this.idleMs / 4));
      const limit = Math.ceil(this.idleMs / every) + 1;
      this.sweepTimer = setInterval(() => this.sweep(limit), every);
      this.sweepTimer.unref();
    }
  }

  private sweep(limit: number): void {
    const cutoff = ++this.epoch - limit;
    for (const conn of this.connections) if (conn.lastActive <= cutoff) conn.socket.destroy();
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stop accepting, end every connection, remove the socket file. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.sweepTimer) clearInterval(this.sweepTimer);
      for (const conn of this.connections) conn.socket.destroy();
      if (this.listening) {
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
      }
      await rm(this.path, { force: true }).catch(() => undefined);
    })();
    return this.closing;
  }
}

/** One accepted connection: scan, serve one request at a time, write each reply once. */
class ServerConnection {
  private readonly owner: ThriftServer;
  readonly socket: net.Socket;
  /** The owner's epoch at the last byte read or reply written. */
  lastActive: number;
  private readonly processor: Processor;
  private scanner: FrameScanner | undefined; // made on the first byte
  private busy = false;
  private ended = false;
  private waitingDrain = false;
  /** This connection's part of the owner's `held`. */
  private heldHere = 0;

  constructor(owner: ThriftServer, socket: net.Socket, processor: Processor) {
    this.owner = owner;
    this.socket = socket;
    this.processor = processor;
    this.lastActive = owner.epoch;
    socket.on('error', (err) => owner.log.debug({ err: err.message }, 'thrift connection error'));
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('end', () => this.onEnd());
  }

  /** The peer closed its side: answer what it sent (pipelined requests too), then close. */
  private onEnd(): void {
    this.ended = true;
    if (!this.busy) this.drain();
  }

  private close(): void {
    if (this.socket.writableLength === 0) this.socket.destroy();
    else this.socket.end();
  }

  private onData(data: Buffer): void {
    this.lastActive = this.owner.epoch;
    const scanner = (this.scanner ??= new FrameScanner(this.owner.maxBytes));
    if (this.owner.held + data.length > this.owner.maxBytes && this.heldHere + data.length <= this.owner.maxBytes) {
      // This connection is under the bound, but with the others it would pass it (a peer opening many connections);
      // one connection over it is the scanner's refusal below.
      this.owner.log.warn(
        { path: this.owner.path, held: this.owner.held, connections: this.owner.connectionCount },
        `thrift requests held over all connections would pass ${this.owner.maxBytes} bytes; closing connection`,
      );
      this.socket.destroy();
      return;
    }
    try {
      scanner.push(data);
    } catch (err) {
      this.owner.log.warn({ path: this.owner.path, err: errorMessage(err) }, 'thrift request too large; closing connection');
      this.socket.destroy();
      return;
    }
    this.drain();
  }

  /** Report what the scanner holds now to the owner's `held`. */
  private account(): void {
    const now = this.scanner ? this.scanner.buffered : 0;
    this.owner.held += now - this.heldHere;
    this.heldHere = now;
  }

  /** The connection closed: what it held is let go. */
  release(): void {
    this.owner.held -= this.heldHere;
    this.heldHere = 0;
    this.scanner = undefined;
  }

  private readonly onReply = (buf: Buffer): void => {
    if (!this.socket.destroyed) this.socket.write(buf);
    this.lastActive = this.owner.epoch;
    this.busy = false;
  };

  /**
   * The peer is not reading its replies: read nothing more from it until the
   * kernel took what is queued (else replies pile up in memory for as long as
   * it keeps sending; the idle sweep ends a peer that never reads again).
   */
  private waitForDrain(): void {
    if (this.waitingDrain) return;
    this.waitingDrain = true;
    this.socket.pause();
    this.socket.once('drain', () => {
      this.waitingDrain = false;
      this.socket.resume();
      this.drain();
    });
  }

  private drain(): void {
    this.serve();
    if (!this.socket.destroyed) this.account();
  }

  private serve(): void {
    const scanner = this.scanner;
    while (!this.busy && !this.socket.destroyed) {
      if (this.socket.writableNeedDrain) {
        this.waitForDrain();
        return;
      }
      let async = false;
      try {
        const frame = scanner?.next();
        if (!frame) {
          if (this.ended) this.close();
          return;
        }
        this.busy = true;
        this.processor.process(frame, (buf) => {
          this.onReply(buf);
          if (async) this.drain();
        });
      } catch (err) {
        this.owner.log.warn({ path: this.owner.path, err: errorMessage(err) }, 'bad thrift frame; closing connection');
        this.socket.destroy();
        return;
      }
      async = true;
    }
  }
}
