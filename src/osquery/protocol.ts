/**
 * The osquery extension protocol as plain TypeScript types (from
 * proto/osquery/osquery.thrift), the struct builders, and the service
 * processors. Encoding and decoding live in ./wire (our own codec for this
 * small IDL, ADR 0010); the generated code in ./gen and the `thrift` npm
 * runtime remain only as the reference the codec is tested against
 * (./reference.ts, never loaded in production).
 *
 * Wire format (docs/protocol/osquery-extensions.md#wire-format): binary protocol, strict write, lenient read,
 * unframed stream, no length prefix.
 */
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

export { ExtensionProcessor, ExtensionManagerProcessor, type Processor } from './processor.js';
export { MAX_STRING_BYTES, MessageType, TApplicationExceptionType } from './wire/constants.js';

/**
 * Build wire structs with every field set: osqueryd's C++ writes every field
 * on every message, and the codec leaves out null ones.
 */
export function status(code: number, message: string, uuid = 0): ExtensionStatus {
  return { code, message, uuid };
}

export function response(st: ExtensionStatus, rows: PluginResponse = []): ExtensionResponse {
  return { status: status(st.code, st.message, st.uuid), response: rows };
}

export function extensionInfo(info: Partial<InternalExtensionInfo> & { name: string }): InternalExtensionInfo {
  return {
    name: info.name,
    version: info.version ?? '',
    sdk_version: info.sdk_version ?? '',
    min_sdk_version: info.min_sdk_version ?? '',
  };
}

export function optionInfo(value: string, defaultValue: string, type: string): InternalOptionInfo {
  return { value, default_value: defaultValue, type };
}

/** Normalise a decoded status (fields may be null when a peer omitted them). */
export function readStatus(raw: Partial<ExtensionStatus> | null | undefined): ExtensionStatus {
  return { code: raw?.code ?? 0, message: raw?.message ?? '', uuid: Number(raw?.uuid ?? 0) };
}

export function readResponse(raw: Partial<ExtensionResponse> | null | undefined): ExtensionResponse {
  return { status: readStatus(raw?.status), response: raw?.response ?? [] };
}
