/**
 * Typed facade over the generated Thrift code (src/osquery/gen, from
 * proto/osquery/osquery.thrift) and the `thrift` npm runtime. Everything
 * above this module sees plain TypeScript types; nothing else imports gen/.
 *
 * Wire format (reference §2): binary protocol, strict write, lenient read,
 * unframed stream, no length prefix.
 */
import thrift from 'thrift';
import extensionGen from './gen/Extension.cjs';
import managerGen from './gen/ExtensionManager.cjs';
import typesGen from './gen/osquery_types.cjs';

export type PluginRequest = Record<string, string>;
export type PluginResponse = Record<string, string>[];

export interface ExtensionStatus {
  code: number;
  message: string;
  uuid: number;
}

export interface ExtensionResponse {
  status: ExtensionStatus;
  response: PluginResponse;
}

export interface InternalExtensionInfo {
  name: string;
  version: string;
  sdk_version: string;
  min_sdk_version: string;
}

export interface InternalOptionInfo {
  value: string;
  default_value: string;
  type: string;
}

/** registry name → plugin name → route info. */
export type ExtensionRegistry = Record<string, Record<string, PluginResponse>>;
/** uuid (decimal string key, as JS objects have) → info. */
export type InternalExtensionList = Record<string, InternalExtensionInfo>;
export type InternalOptionList = Record<string, InternalOptionInfo>;

export const ExtensionCode = { EXT_SUCCESS: 0, EXT_FAILED: 1, EXT_FATAL: 2 } as const;

/** What a service implementation provides: the Extension service. */
export interface ExtensionHandler {
  ping(): Promise<ExtensionStatus> | ExtensionStatus;
  call(registry: string, item: string, request: PluginRequest): Promise<ExtensionResponse> | ExtensionResponse;
  shutdown(): Promise<void> | void;
}

/** The ExtensionManager service (osqueryd's side). */
export interface ExtensionManagerHandler extends ExtensionHandler {
  extensions(): Promise<InternalExtensionList> | InternalExtensionList;
  options(): Promise<InternalOptionList> | InternalOptionList;
  registerExtension(info: InternalExtensionInfo, registry: ExtensionRegistry): Promise<ExtensionStatus> | ExtensionStatus;
  deregisterExtension(uuid: number): Promise<ExtensionStatus> | ExtensionStatus;
  query(sql: string): Promise<ExtensionResponse> | ExtensionResponse;
  getQueryColumns(sql: string): Promise<ExtensionResponse> | ExtensionResponse;
}

const { TBinaryProtocol, TBufferedTransport, Thrift } = thrift;
export { TBufferedTransport };
export const TApplicationException = Thrift.TApplicationException;
export const TApplicationExceptionType = Thrift.TApplicationExceptionType;
export const MessageType = Thrift.MessageType;
export const InputBufferUnderrunError = (thrift as unknown as { InputBufferUnderrunError: new () => Error }).InputBufferUnderrunError;

const VERSION_MASK = 0xffff0000 | 0;
const VERSION_1 = 0x80010000 | 0;
const TYPE_MASK = 0x000000ff;
const MAX_METHOD_NAME = 1024;
/** Largest single string or binary accepted (the transport's own cap applies too). */
export const MAX_STRING_BYTES = 64 * 1024 * 1024;
const MAX_CONTAINER_SIZE = 16 * 1024 * 1024;

function protocolError(message: string): Error {
  return new Thrift.TProtocolException(Thrift.TProtocolExceptionType.INVALID_DATA, message);
}

interface Int64Like {
  buffer: Buffer;
  toNumber(allowImprecise?: boolean): number;
}

/**
 * TBinaryProtocol with i64 handled as JS numbers. The runtime reads i64 into
 * node-int64 objects and, when writing map keys (always strings in JS),
 * parses them as hex ("23817" would go out as 0x23817). osquery's only i64 is
 * the 16-bit extension uuid, so a number is exact.
 */
export class OsqueryBinaryProtocol extends TBinaryProtocol {
  override writeI64(value: number | string | bigint | Int64Like): void {
    const buf = Buffer.alloc(8);
    if (typeof value === 'object' && value !== null && 'buffer' in value) {
      value.buffer.copy(buf);
    } else {
      buf.writeBigInt64BE(BigInt(value));
    }
    (this as unknown as { trans: { write(b: Buffer): void } }).trans.write(buf);
  }

  /**
   * Message header, strict or old-style (osqueryd reads leniently). Bounds the
   * method-name length so a stray non-Thrift byte stream (an HTTP request, a
   * text line) is refused at once instead of waiting for gigabytes.
   */
  override readMessageBegin(): { fname: string; mtype: number; rseqid: number } {
    const sz = this.readI32();
    if (sz < 0) {
      if ((sz & VERSION_MASK) !== VERSION_1) throw protocolError(`bad version in message header: 0x${(sz >>> 0).toString(16)}`);
      const fname = this.readString();
      if (fname.length > MAX_METHOD_NAME) throw protocolError('method name too long');
      const rseqid = this.readI32();
      return { fname, mtype: sz & TYPE_MASK, rseqid };
    }
    if (sz > MAX_METHOD_NAME) throw protocolError(`not a thrift message (name length ${sz})`);
    const fname = this.readRaw(sz).toString('utf8');
    const mtype = this.readByte();
    const rseqid = this.readI32();
    return { fname, mtype, rseqid };
  }

  override readString(): string {
    return this.readRaw(this.readSize('string')).toString('utf8');
  }

  override readBinary(): Buffer {
    return this.readRaw(this.readSize('binary'));
  }

  override readMapBegin(): { ktype: number; vtype: number; size: number } {
    const r = super.readMapBegin() as { ktype: number; vtype: number; size: number };
    if (r.size < 0 || r.size > MAX_CONTAINER_SIZE) throw protocolError(`map size ${r.size} out of range`);
    return r;
  }

  override readListBegin(): { etype: number; size: number } {
    const r = super.readListBegin() as { etype: number; size: number };
    if (r.size < 0 || r.size > MAX_CONTAINER_SIZE) throw protocolError(`list size ${r.size} out of range`);
    return r;
  }

  private readSize(what: string): number {
    const len = this.readI32();
    if (len < 0 || len > MAX_STRING_BYTES) throw protocolError(`${what} size ${len} out of range`);
    return len;
  }

  private readRaw(len: number): Buffer {
    if (len === 0) return Buffer.alloc(0);
    return (this as unknown as { trans: { read(n: number): Buffer } }).trans.read(len);
  }

  override readI64(): never {
    const raw = (super.readI64() as unknown as Int64Like).buffer;
    // Typed as never only to satisfy the runtime's Int64 signature; callers get a number.
    return Number(raw.readBigInt64BE(0)) as never;
  }
}

interface GeneratedClient {
  _reqs: Record<number, (err: unknown, result: unknown) => void>;
  [method: `recv_${string}`]: (input: unknown, mtype: number, seqid: number) => void;
}

type ClientCtor = new (output: unknown, pClass: unknown) => GeneratedClient;
type ProcessorCtor = new (handler: object) => { process(input: unknown, output: unknown): void };

export const ExtensionManagerClientCtor = (managerGen as unknown as { Client: ClientCtor }).Client;
export const ExtensionClientCtor = (extensionGen as unknown as { Client: ClientCtor }).Client;
const RawExtensionProcessor = (extensionGen as unknown as { Processor: ProcessorCtor }).Processor;
const RawManagerProcessor = (managerGen as unknown as { Processor: ProcessorCtor }).Processor;

/*
 * The generated processors pick promise or callback style by the handler
 * function's arity (`fn.length`), and a synchronous throw escapes them. These
 * bindings give every method its exact arity and make it async, so a handler
 * may return a value or a promise, and a throw becomes a TApplicationException.
 */
function bindExtension(h: ExtensionHandler) {
  return {
    ping: async () => h.ping(),
    call: async (registry: string, item: string, request: PluginRequest | null) => h.call(registry ?? '', item ?? '', request ?? {}),
    shutdown: async () => h.shutdown(),
  };
}

function bindManager(h: ExtensionManagerHandler) {
  return {
    ...bindExtension(h),
    extensions: async () => h.extensions(),
    options: async () => h.options(),
    registerExtension: async (info: InternalExtensionInfo | null, registry: ExtensionRegistry | null) =>
      h.registerExtension(extensionInfo({ ...info, name: info?.name ?? '' }), registry ?? {}),
    deregisterExtension: async (uuid: number) => h.deregisterExtension(Number(uuid)),
    query: async (sql: string | null) => h.query(sql ?? ''),
    getQueryColumns: async (sql: string | null) => h.getQueryColumns(sql ?? ''),
  };
}

export interface Processor {
  process(input: unknown, output: unknown): void;
}

/** Serves the Extension service (ping, call, shutdown) with `handler`. */
export class ExtensionProcessor implements Processor {
  private readonly inner: Processor;
  constructor(handler: ExtensionHandler) {
    this.inner = new RawExtensionProcessor(bindExtension(handler));
  }
  process(input: unknown, output: unknown): void {
    this.inner.process(input, output);
  }
}

/** Serves the ExtensionManager service (osqueryd's side) with `handler`. */
export class ExtensionManagerProcessor implements Processor {
  private readonly inner: Processor;
  constructor(handler: ExtensionManagerHandler) {
    this.inner = new RawManagerProcessor(bindManager(handler));
  }
  process(input: unknown, output: unknown): void {
    this.inner.process(input, output);
  }
}

type StructCtor<T> = new (args?: Partial<T>) => T;
const types = typesGen as unknown as {
  ExtensionStatus: StructCtor<ExtensionStatus>;
  ExtensionResponse: StructCtor<ExtensionResponse>;
  InternalExtensionInfo: StructCtor<InternalExtensionInfo>;
  InternalOptionInfo: StructCtor<InternalOptionInfo>;
};

/**
 * Build wire structs with every field set: osqueryd's C++ writes every field
 * on every message, and the generated JS skips null ones.
 */
export function status(code: number, message: string, uuid = 0): ExtensionStatus {
  return new types.ExtensionStatus({ code, message, uuid });
}

export function response(st: ExtensionStatus, rows: PluginResponse = []): ExtensionResponse {
  return new types.ExtensionResponse({ status: status(st.code, st.message, st.uuid), response: rows });
}

export function extensionInfo(info: Partial<InternalExtensionInfo> & { name: string }): InternalExtensionInfo {
  return new types.InternalExtensionInfo({
    name: info.name,
    version: info.version ?? '',
    sdk_version: info.sdk_version ?? '',
    min_sdk_version: info.min_sdk_version ?? '',
  });
}

export function optionInfo(value: string, defaultValue: string, type: string): InternalOptionInfo {
  return new types.InternalOptionInfo({ value, default_value: defaultValue, type });
}

/** Normalise a decoded status (fields may be null when a peer omitted them). */
export function readStatus(raw: Partial<ExtensionStatus> | null | undefined): ExtensionStatus {
  return { code: raw?.code ?? 0, message: raw?.message ?? '', uuid: Number(raw?.uuid ?? 0) };
}

export function readResponse(raw: Partial<ExtensionResponse> | null | undefined): ExtensionResponse {
  return { status: readStatus(raw?.status), response: raw?.response ?? [] };
}

/** A runtime read buffer; positions are committed per whole message. */
export interface ReadTransport {
  commitPosition(): void;
  rollbackPosition(): void;
}

type RuntimeTransport = {
  receiver(cb: (t: ReadTransport) => void, seqid: undefined, maxLength: number): (data: Buffer) => void;
  new (buf: undefined, onFlush: (buf: Buffer | undefined) => void): unknown;
};
const Buffered = TBufferedTransport as unknown as RuntimeTransport;

/** Socket data in (throws past maxBytes); `cancel()` drops a deferred parse when the socket closes. */
export interface Receiver {
  (data: Buffer): void;
  cancel(): void;
}

/**
 * Feed socket data in; `onData` parses the accumulated buffer, committing each
 * whole message and rolling back on an incomplete one. Throws past maxBytes.
 *
 * An incomplete message is parsed again from its first byte, so parsing on
 * every chunk is quadratic for a request trickled in small pieces (a 6 MiB
 * map of tiny entries stalled the whole server for ~40 s). While a message is
 * incomplete, the next attempt waits until the buffer has doubled, or until
 * as long as the last attempt took has passed since it ended: parse work stays
 * linear for a fast sender and at most about half the event loop for a slow
 * one, and a message is parsed at most one attempt's duration after its last
 * byte arrived. Small messages are parsed at once, as before.
 */
export function makeReceiver(onData: (t: ReadTransport) => void, maxBytes: number): Receiver {
  let transport: ReadTransport | undefined;
  let pendingSize = 0; // bytes of the incomplete message at the last attempt; 0: none
  let lastEnd = 0;
  let lastCost = 0;
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const buffered = (t: ReadTransport) => (t as unknown as { writeCursor: number }).writeCursor;
  const attempt = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (cancelled || !transport) return;
    const start = performance.now();
    onData(transport);
    pendingSize = buffered(transport);
    lastEnd = performance.now();
    lastCost = lastEnd - start;
  };
  const inner = Buffered.receiver(
    (t) => {
      transport = t;
      if (pendingSize === 0 || buffered(t) >= 2 * pendingSize || performance.now() - lastEnd >= lastCost) {
        attempt();
      } else {
        timer ??= setTimeout(attempt, Math.max(1, Math.ceil(lastEnd + lastCost - performance.now())));
      }
    },
    undefined,
    maxBytes,
  );
  const receive = ((data: Buffer) => inner(data)) as Receiver;
  receive.cancel = () => {
    cancelled = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  return receive;
}

/** A write transport whose flush hands the encoded message to `write`. */
export function makeWriteTransport(write: (buf: Buffer) => void): unknown {
  return new Buffered(undefined, (buf) => {
    if (buf) write(buf);
  });
}

export function newProtocol(transport: unknown): OsqueryBinaryProtocol {
  return new OsqueryBinaryProtocol(transport as never);
}
