import { LauncherError } from '../errors.js';
import { ThriftConnection, DEFAULT_MAX_MESSAGE_BYTES, type ServiceName } from './connection.js';
import {
  extensionInfo,
  readResponse,
  readStatus,
  type ExtensionRegistry,
  type ExtensionResponse,
  type ExtensionStatus,
  type InternalExtensionInfo,
  type InternalExtensionList,
  type InternalOptionList,
  type PluginRequest,
  type PluginResponse,
} from './protocol.js';

export interface ThriftClientOptions {
  /** Per-call timeout, connect included (ms). osquery-go defaults to 1 s; queries need more. */
  timeoutMs?: number;
  maxMessageBytes?: number;
}

/** A non-zero ExtensionStatus.code, with osqueryd's message. */
export class ExtensionStatusError extends LauncherError {
  readonly status: ExtensionStatus;
  constructor(what: string, st: ExtensionStatus) {
    super('E_EXTENSION_STATUS', `${what} failed with code ${st.code}: ${st.message}`);
    this.status = st;
  }
}

/**
 * Shared plumbing: one lazily opened connection, calls serialised through a
 * promise chain, a fresh connection after any transport failure, and a
 * per-call timeout that covers waiting, connecting and the exchange.
 */
class SerialThriftClient {
  readonly path: string;
  protected readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly service: ServiceName;
  private conn: ThriftConnection | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(path: string, service: ServiceName, options: ThriftClientOptions = {}) {
    this.path = path;
    this.service = service;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  protected invoke<T>(method: string, args: unknown[], timeoutMs = this.timeoutMs): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.closed) throw new LauncherError('E_CLOSED', `client for ${this.path} is closed`);
      const deadline = Date.now() + timeoutMs;
      if (!this.conn || this.conn.closed) {
        this.conn = await ThriftConnection.connect(this.path, this.service, timeoutMs, this.maxBytes);
      }
      const remaining = Math.max(1, deadline - Date.now());
      return this.conn.invoke<T>(method, args, remaining, timeoutMs);
    };
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Close the connection; later calls fail with E_CLOSED. Idempotent. */
  close(): void {
    this.closed = true;
    this.conn?.close();
    this.conn = undefined;
  }
}

/** The Extension service every socket serves (an extension's and osqueryd's): ping, call, shutdown. */
class ExtensionServiceClient extends SerialThriftClient {
  async ping(timeoutMs?: number): Promise<ExtensionStatus> {
    return readStatus(await this.invoke('ping', [], timeoutMs));
  }

  async call(registry: string, item: string, request: PluginRequest, timeoutMs?: number): Promise<ExtensionResponse> {
    return readResponse(await this.invoke('call', [registry, item, request], timeoutMs));
  }

  async shutdown(timeoutMs?: number): Promise<void> {
    await this.invoke('shutdown', [], timeoutMs);
  }
}

/** Client of an extension's own socket (`<manager>.<uuid>`): ping, call, shutdown. */
export class ExtensionClient extends ExtensionServiceClient {
  constructor(path: string, options: ThriftClientOptions = {}) {
    super(path, 'extension', options);
  }
}

/**
 * Client of osqueryd's extension manager socket (`--extensions_socket`).
 * Rows come back as `Record<string,string>[]`; a non-zero status on query,
 * getQueryColumns, registerExtension or deregisterExtension throws
 * ExtensionStatusError.
 */
export class ExtensionManagerClient extends ExtensionServiceClient {
  constructor(path: string, options: ThriftClientOptions = {}) {
    super(path, 'manager', options);
  }

  async extensions(timeoutMs?: number): Promise<Map<number, InternalExtensionInfo>> {
    const raw = await this.invoke<Record<string, Partial<InternalExtensionInfo>> | null>('extensions', [], timeoutMs);
    const out = new Map<number, InternalExtensionInfo>();
    for (const [uuid, info] of Object.entries(raw ?? {})) {
      out.set(Number(uuid), extensionInfo({ ...info, name: info.name ?? '' }));
    }
    return out;
  }

  async options(timeoutMs?: number): Promise<InternalOptionList> {
    const raw = await this.invoke<InternalOptionList | null>('options', [], timeoutMs);
    return raw ?? {};
  }

  /** Register; returns the uuid osqueryd assigned. */
  async registerExtension(
    info: Partial<InternalExtensionInfo> & { name: string },
    registry: ExtensionRegistry,
    timeoutMs?: number,
  ): Promise<number> {
    const st = readStatus(await this.invoke('registerExtension', [extensionInfo(info), registry], timeoutMs));
    if (st.code !== 0) throw new ExtensionStatusError(`registerExtension(${info.name})`, st);
    return st.uuid;
  }

  async deregisterExtension(uuid: number, timeoutMs?: number): Promise<void> {
    const st = readStatus(await this.invoke('deregisterExtension', [uuid], timeoutMs));
    if (st.code !== 0) throw new ExtensionStatusError(`deregisterExtension(${uuid})`, st);
  }

  async query(sql: string, timeoutMs?: number): Promise<PluginResponse> {
    const res = readResponse(await this.invoke('query', [sql], timeoutMs));
    if (res.status.code !== 0) throw new ExtensionStatusError('query', res.status);
    return res.response;
  }

  /** One `{column: type}` entry per result column, in order. */
  async getQueryColumns(sql: string, timeoutMs?: number): Promise<Array<{ name: string; type: string }>> {
    const res = readResponse(await this.invoke('getQueryColumns', [sql], timeoutMs));
    if (res.status.code !== 0) throw new ExtensionStatusError('getQueryColumns', res.status);
    return res.response.flatMap((row) => Object.entries(row).map(([name, type]) => ({ name, type })));
  }
}

export type {
  ExtensionRegistry,
  ExtensionResponse,
  ExtensionStatus,
  InternalExtensionInfo,
  InternalExtensionList,
  InternalOptionList,
  PluginRequest,
  PluginResponse,
};
