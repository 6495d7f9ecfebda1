import net from 'node:net';
import { LauncherError, errorMessage } from '../errors.js';
import { MessageType } from './wire/constants.js';
import { readApplicationError } from './wire/exception.js';
import { EXTENSION_METHODS, MANAGER_METHODS, METHODS, readResult, writeArgs } from './wire/methods.js';
import { WireReader } from './wire/reader.js';
import { FrameScanner, type Frame } from './wire/scanner.js';
import { WireWriter } from './wire/writer.js';

/** Replies larger than this are refused (Thrift's own default is ~100 MiB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Which service the peer serves: an extension's socket, or osqueryd's manager socket. */
export type ServiceName = 'extension' | 'manager';

interface Pending {
  method: string;
  resolve: (value: unknown) => void;
  fail: (err: Error) => void;
}

/**
 * One Thrift client connection over a Unix socket, one call in flight at a
 * time (as osquery-go's client). This class owns the socket, the per-call
 * timeout and the mapping of a reply to the pending call: osqueryd's C++
 * server always answers with seqid 0, so replies are matched by order and
 * method name, not seqid. Each call goes out as one buffer in one write.
 *
 * Any transport failure (timeout, reset, garbage) destroys the connection; the
 * owner opens a new one for the next call.
 */
export class ThriftConnection {
  readonly path: string;
  private readonly socket: net.Socket;
  private readonly methods: ReadonlySet<string>;
  private readonly scanner: FrameScanner;
  private seqid = 0; // first call goes out with seqid 0, like osqueryd's own client
  private pending: Pending | undefined;
  private closedError: Error | undefined;

  private constructor(path: string, socket: net.Socket, service: ServiceName, maxMessageBytes: number) {
    this.path = path;
    this.socket = socket;
    this.methods = service === 'manager' ? MANAGER_METHODS : EXTENSION_METHODS;
    this.scanner = new FrameScanner(maxMessageBytes);
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('error', (err) =>
      this.destroy(new LauncherError('E_THRIFT_CONNECTION', `thrift connection ${path}: ${err.message}`, { cause: err })),
    );
    socket.on('close', () => this.destroy(new LauncherError('E_THRIFT_CONNECTION', `thrift connection ${path} closed by peer`)));
  }

  static connect(
    path: string,
    service: ServiceName,
    timeoutMs: number,
    maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES,
  ): Promise<ThriftConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new LauncherError('E_THRIFT_TIMEOUT', `connect to ${path} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ThriftConnection(path, socket, service, maxMessageBytes));
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

  /** Call `method` with `args`; rejects on timeout, transport failure or TApplicationException. */
  invoke<T>(method: string, args: unknown[], timeoutMs: number, reportedTimeoutMs = timeoutMs): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.pending)
      return Promise.reject(new LauncherError('E_THRIFT_CONNECTION', `thrift connection ${this.path} is busy with ${this.pending.method}`));
    const codec = this.methods.has(method) ? METHODS[method] : undefined;
    if (!codec) return Promise.reject(new LauncherError('E_THRIFT_PROTOCOL', `no such thrift method: ${method}`));
    const w = new WireWriter();
    let request: Buffer;
    try {
      w.messageBegin(method, MessageType.CALL, this.seqid++);
      writeArgs(w, codec, args);
      request = w.finish();
    } catch (err) {
      w.release();
      return Promise.reject(new LauncherError('E_THRIFT_PROTOCOL', `encoding ${method}: ${errorMessage(err)}`, { cause: err }));
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.destroy(new LauncherError('E_THRIFT_TIMEOUT', `${method} on ${this.path} timed out after ${reportedTimeoutMs} ms`));
      }, timeoutMs);
      this.pending = {
        method,
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        fail: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.socket.write(request);
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
    pending?.fail(err);
  }

  private onData(data: Buffer): void {
    try {
      this.scanner.push(data);
      for (let frame = this.scanner.next(); frame; frame = this.closedError ? undefined : this.scanner.next()) this.onReply(frame);
    } catch (err) {
      this.destroy(
        err instanceof LauncherError
          ? err
          : new LauncherError('E_THRIFT_PROTOCOL', `bad reply on ${this.path}: ${errorMessage(err)}`, { cause: err }),
      );
    }
  }

  private onReply(frame: Frame): void {
    const pending = this.pending;
    if (!pending || frame.name !== pending.method) {
      throw new LauncherError(
        'E_THRIFT_PROTOCOL',
        `unexpected reply ${JSON.stringify(frame.name)} on ${this.path}${pending ? ` while waiting for ${pending.method}` : ''}`,
      );
    }
    const r = new WireReader(frame.buf, frame.body, frame.end);
    if (frame.type === MessageType.EXCEPTION) {
      const x = readApplicationError(r);
      this.pending = undefined;
      pending.fail(
        new LauncherError('E_THRIFT_APPLICATION', `${pending.method} on ${this.path}: ${x.message} (type ${x.type})`, { cause: x }),
      );
      return;
    }
    const codec = METHODS[pending.method]!;
    const { value } = readResult(r, codec);
    this.pending = undefined;
    if (value === undefined && codec.result)
      pending.fail(new LauncherError('E_THRIFT_PROTOCOL', `${pending.method} on ${this.path} failed: unknown result`));
    else pending.resolve(value);
  }
}
