import net from 'node:net';
import { LauncherError, errorMessage } from '../errors.js';
import {
  InputBufferUnderrunError,
  OsqueryBinaryProtocol,
  TApplicationException,
  makeReceiver,
  makeWriteTransport,
  newProtocol,
  type ReadTransport,
} from './protocol.js';

type GeneratedClient = Record<string, unknown> & {
  _reqs: Record<number, (err: unknown, result: unknown) => void>;
  _seqid: number;
};
type ClientCtor = new (output: unknown, pClass: unknown) => unknown;

/** Replies larger than this are refused (Thrift's own default is ~100 MiB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/**
 * One Thrift client connection over a Unix socket, one call in flight at a
 * time (as osquery-go's client). The generated client encodes calls and
 * decodes replies; this class owns the socket, the per-call timeout and the
 * mapping of a reply to the pending call: osqueryd's C++ server always answers
 * with seqid 0, so replies are matched by order and method name, not seqid.
 *
 * Any transport failure (timeout, reset, garbage) destroys the connection; the
 * owner opens a new one for the next call.
 */
export class ThriftConnection {
  readonly path: string;
  private readonly socket: net.Socket;
  private readonly client: GeneratedClient;
  private pending: { method: string; seqid: number; fail: (err: Error) => void; callback?: (err: unknown, result: unknown) => void } | undefined;
  private closedError: Error | undefined;

  private constructor(path: string, socket: net.Socket, ctor: ClientCtor, maxMessageBytes: number) {
    this.path = path;
    this.socket = socket;
    const output = makeWriteTransport((buf) => {
      if (!socket.destroyed) socket.write(buf);
    });
    this.client = new ctor(output, OsqueryBinaryProtocol) as GeneratedClient;
    this.client._seqid = -1; // first call goes out with seqid 0, like osqueryd's own client
    const receive = makeReceiver((transport) => this.onReply(transport), maxMessageBytes);
    socket.on('close', () => receive.cancel());
    socket.on('data', (data: Buffer) => {
      try {
        receive(data);
      } catch (err) {
        // The runtime throws when the buffered reply exceeds maxMessageBytes.
        this.destroy(new LauncherError('E_THRIFT_PROTOCOL', `reply on ${path}: ${errorMessage(err)}`, { cause: err }));
      }
    });
    socket.on('error', (err) => this.destroy(new LauncherError('E_THRIFT_CONNECTION', `thrift connection ${path}: ${err.message}`, { cause: err })));
    socket.on('close', () => this.destroy(new LauncherError('E_THRIFT_CONNECTION', `thrift connection ${path} closed by peer`)));
  }

  static connect(path: string, ctor: ClientCtor, timeoutMs: number, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): Promise<ThriftConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new LauncherError('E_THRIFT_TIMEOUT', `connect to ${path} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ThriftConnection(path, socket, ctor, maxMessageBytes));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new LauncherError('E_THRIFT_CONNECTION', `connect to ${path}: ${err.message}`, { cause: err }));
      });
    });
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Invoke a generated client method; rejects on timeout, transport failure or TApplicationException. */
  invoke<T>(method: string, args: unknown[], timeoutMs: number, reportedTimeoutMs = timeoutMs): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.pending) return Promise.reject(new LauncherError('E_THRIFT_CONNECTION', `thrift connection ${this.path} is busy with ${this.pending.method}`));
    const fn = this.client[method];
    if (typeof fn !== 'function') return Promise.reject(new LauncherError('E_THRIFT_PROTOCOL', `no such thrift method: ${method}`));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.destroy(new LauncherError('E_THRIFT_TIMEOUT', `${method} on ${this.path} timed out after ${reportedTimeoutMs} ms`));
      }, timeoutMs);
      const seqid = this.client._seqid + 1;
      const settle = (err: Error | undefined, value?: T) => {
        clearTimeout(timer);
        this.pending = undefined;
        if (err) reject(err);
        else resolve(value as T);
      };
      this.pending = { method, seqid, fail: (err) => settle(err) };
      let call: Promise<T>;
      try {
        call = (fn as (...a: unknown[]) => Promise<T>).apply(this.client, args);
      } catch (err) {
        settle(new LauncherError('E_THRIFT_PROTOCOL', `encoding ${method}: ${errorMessage(err)}`, { cause: err }));
        return;
      }
      // The generated recv_* deletes its callback before decoding; keep it so
      // a reply that arrives in several chunks can be decoded again.
      if (this.pending) this.pending.callback = this.client._reqs[seqid];
      call.then(
        (value) => settle(undefined, value),
        (err: unknown) => {
          if (err instanceof TApplicationException) {
            settle(new LauncherError('E_THRIFT_APPLICATION', `${method} on ${this.path}: ${err.message} (type ${(err as unknown as { type: number }).type})`, { cause: err }));
          } else {
            settle(err instanceof Error ? err : new Error(String(err)));
          }
        },
      );
    });
  }

  close(): void {
    this.destroy(new LauncherError('E_CLOSED', `thrift connection ${this.path} closed`));
  }

  private destroy(err: Error): void {
    if (!this.closedError) this.closedError = err;
    this.socket.destroy();
    const pending = this.pending;
    this.pending = undefined;
    if (pending) {
      delete this.client._reqs[pending.seqid];
      pending.fail(err);
    }
  }

  private onReply(t: ReadTransport): void {
    const proto = newProtocol(t);
    try {
      for (;;) {
        const header = proto.readMessageBegin();
        const pending = this.pending;
        if (!pending || header.fname !== pending.method) {
          throw new LauncherError('E_THRIFT_PROTOCOL', `unexpected reply ${JSON.stringify(header.fname)} on ${this.path}${pending ? ` while waiting for ${pending.method}` : ''}`);
        }
        if (pending.callback) this.client._reqs[pending.seqid] = pending.callback;
        const recv = this.client[`recv_${header.fname}`] as (i: unknown, m: number, s: number) => void;
        recv.call(this.client, proto, header.mtype, pending.seqid);
        t.commitPosition();
      }
    } catch (err) {
      if (err instanceof InputBufferUnderrunError) {
        t.rollbackPosition();
        return;
      }
      this.destroy(err instanceof LauncherError ? err : new LauncherError('E_THRIFT_PROTOCOL', `bad reply on ${this.path}: ${errorMessage(err)}`, { cause: err }));
    }
  }
}
