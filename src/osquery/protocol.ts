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
export const ExtensionProcessor = (extensionGen as unknown as { Processor: ProcessorCtor }).Processor;
export const ExtensionManagerProcessor = (managerGen as unknown as { Processor: ProcessorCtor }).Processor;

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

/** Feed socket data in; `onData` is called with the accumulated buffer. Throws past maxBytes. */
export function makeReceiver(onData: (t: ReadTransport) => void, maxBytes: number): (data: Buffer) => void {
  return Buffered.receiver(onData, undefined, maxBytes);
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
