/**
 * The structs and containers of proto/osquery/osquery.thrift, written and read
 * field by field with the same ids and types as the generated code: a field
 * that is null or undefined is left out (as generated JS does), map entries go
 * out in Object.keys order, and decoded structs have every field set.
 */
import { T, protocolError } from './constants.js';
import type { WireReader } from './reader.js';
import type { WireWriter } from './writer.js';
import type {
  ExtensionRegistry,
  ExtensionResponse,
  ExtensionStatus,
  InternalExtensionInfo,
  InternalExtensionList,
  InternalOptionInfo,
  InternalOptionList,
  PluginRequest,
  PluginResponse,
} from '../protocol.js';

type Maybe<T> = T | null | undefined;

/** Set a decoded map entry; "__proto__" becomes an own property, not a prototype. */
function put<V>(obj: Record<string, V>, key: string, value: V): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

function str(w: WireWriter, v: unknown, where: string): void {
  if (typeof v !== 'string') throw new TypeError(`${where}: expected a string, got ${v === null ? 'null' : typeof v}`);
  w.string(v);
}

function stringField(w: WireWriter, id: number, v: Maybe<string>, where: string): void {
  if (v === null || v === undefined) return;
  w.fieldBegin(T.STRING, id);
  str(w, v, where);
}

// --- map<string,string> and list<map<string,string>> ---

export function writeStringMap(w: WireWriter, m: Record<string, string>, where: string): void {
  const keys = Object.keys(m);
  // The values in one native pass (same order as the keys): `m[k]` with a different key each time is a
  // megamorphic keyed load, 12% of the server's CPU on a 1000x10 table reply (issue 14).
  const values = Object.values(m);
  w.mapBegin(T.STRING, T.STRING, keys.length);
  for (let i = 0; i < keys.length; i++) {
    w.string(keys[i]!);
    str(w, values[i], where);
  }
}

/** `maxEntries`: a larger map is a protocol error, before any entry is decoded. */
export function readStringMap(r: WireReader, what: string, maxEntries?: number): PluginRequest {
  const out: PluginRequest = {};
  const n = r.mapBegin(T.STRING, T.STRING, what);
  if (maxEntries !== undefined && n > maxEntries) throw protocolError(`${what}: ${n} entries, at most ${maxEntries} accepted`);
  for (let i = 0; i < n; i++) {
    const k = r.string();
    put(out, k, r.string());
  }
  return out;
}

export function writeRows(w: WireWriter, rows: PluginResponse, where: string): void {
  w.listBegin(T.MAP, rows.length);
  for (let i = 0; i < rows.length; i++) writeStringMap(w, rows[i]!, where);
}

export function readRows(r: WireReader, what: string): PluginResponse {
  const n = r.listBegin(T.MAP, what);
  const out: PluginResponse = new Array(n);
  for (let i = 0; i < n; i++) out[i] = readStringMap(r, what);
  return out;
}

// --- ExtensionStatus (also the shape of ExtensionException) ---

export function writeStatus(w: WireWriter, s: Maybe<Partial<ExtensionStatus>>): void {
  if (s) {
    if (s.code !== null && s.code !== undefined) {
      w.fieldBegin(T.I32, 1);
      w.i32(s.code);
    }
    stringField(w, 2, s.message, 'ExtensionStatus.message');
    if (s.uuid !== null && s.uuid !== undefined) {
      w.fieldBegin(T.I64, 3);
      w.i64(s.uuid);
    }
  }
  w.fieldStop();
}

export function readStatus(r: WireReader): ExtensionStatus {
  const s: ExtensionStatus = { code: 0, message: '', uuid: 0 };
  for (let t = r.fieldBegin(); t !== T.STOP; t = r.fieldBegin()) {
    if (r.fid === 1 && t === T.I32) s.code = r.i32();
    else if (r.fid === 2 && t === T.STRING) s.message = r.string();
    else if (r.fid === 3 && t === T.I64) s.uuid = r.i64();
    else r.skip(t);
  }
  return s;
}

// --- ExtensionResponse ---

export function writeResponse(w: WireWriter, res: Maybe<Partial<ExtensionResponse>>): void {
  if (res) {
    if (res.status) {
      w.fieldBegin(T.STRUCT, 1);
      writeStatus(w, res.status);
    }
    if (res.response) {
      w.fieldBegin(T.LIST, 2);
      writeRows(w, res.response, 'ExtensionResponse.response');
    }
  }
  w.fieldStop();
}

export function readResponse(r: WireReader): ExtensionResponse {
  const res: ExtensionResponse = { status: { code: 0, message: '', uuid: 0 }, response: [] };
  for (let t = r.fieldBegin(); t !== T.STOP; t = r.fieldBegin()) {
    if (r.fid === 1 && t === T.STRUCT) res.status = readStatus(r);
    else if (r.fid === 2 && t === T.LIST) res.response = readRows(r, 'ExtensionResponse.response');
    else r.skip(t);
  }
  return res;
}

// --- InternalExtensionInfo, InternalOptionInfo ---

const INFO_FIELDS = ['name', 'version', 'sdk_version', 'min_sdk_version'] as const;
const OPTION_FIELDS = ['value', 'default_value', 'type'] as const;

function writeStringStruct<K extends string>(
  w: WireWriter,
  obj: Maybe<Partial<Record<K, string | null>>>,
  fields: readonly K[],
  where: string,
): void {
  if (obj) for (let i = 0; i < fields.length; i++) stringField(w, i + 1, obj[fields[i]!], `${where}.${fields[i]}`);
  w.fieldStop();
}

function readStringStruct<K extends string>(r: WireReader, fields: readonly K[]): Record<K, string> {
  const out = {} as Record<K, string>;
  for (const f of fields) out[f] = '';
  for (let t = r.fieldBegin(); t !== T.STOP; t = r.fieldBegin()) {
    if (t === T.STRING && r.fid >= 1 && r.fid <= fields.length) out[fields[r.fid - 1]!] = r.string();
    else r.skip(t);
  }
  return out;
}

export function writeExtensionInfo(w: WireWriter, info: Maybe<Partial<InternalExtensionInfo>>): void {
  writeStringStruct(w, info, INFO_FIELDS, 'InternalExtensionInfo');
}

export function readExtensionInfo(r: WireReader): InternalExtensionInfo {
  return readStringStruct(r, INFO_FIELDS);
}

export function writeOptionInfo(w: WireWriter, o: Maybe<Partial<InternalOptionInfo>>): void {
  writeStringStruct(w, o, OPTION_FIELDS, 'InternalOptionInfo');
}

export function readOptionInfo(r: WireReader): InternalOptionInfo {
  return readStringStruct(r, OPTION_FIELDS);
}

// --- the registry and lists of registerExtension, extensions, options ---

export function writeRegistry(w: WireWriter, reg: ExtensionRegistry): void {
  const kinds = Object.keys(reg);
  w.mapBegin(T.STRING, T.MAP, kinds.length);
  for (const kind of kinds) {
    w.string(kind);
    const routes = reg[kind]!;
    const names = Object.keys(routes);
    w.mapBegin(T.STRING, T.LIST, names.length);
    for (const name of names) {
      w.string(name);
      writeRows(w, routes[name]!, `registry ${kind}/${name}`);
    }
  }
}

export function readRegistry(r: WireReader): ExtensionRegistry {
  const reg: ExtensionRegistry = {};
  const n = r.mapBegin(T.STRING, T.MAP, 'ExtensionRegistry');
  for (let i = 0; i < n; i++) {
    const kind = r.string();
    const routes: Record<string, PluginResponse> = {};
    const m = r.mapBegin(T.STRING, T.LIST, 'ExtensionRouteTable');
    for (let j = 0; j < m; j++) {
      const name = r.string();
      put(routes, name, readRows(r, 'ExtensionPluginResponse'));
    }
    put(reg, kind, routes);
  }
  return reg;
}

/** A map of structs keyed by i64 (as decimal strings) or by string. */
function writeStructMap<V>(w: WireWriter, list: Record<string, V>, keyType: number, writeValue: (w: WireWriter, v: V) => void): void {
  const keys = Object.keys(list);
  w.mapBegin(keyType, T.STRUCT, keys.length);
  for (const k of keys) {
    if (keyType === T.I64) w.i64(k);
    else w.string(k);
    writeValue(w, list[k]!);
  }
}

function readStructMap<V>(r: WireReader, keyType: number, readValue: (r: WireReader) => V, what: string): Record<string, V> {
  const out: Record<string, V> = {};
  const n = r.mapBegin(keyType, T.STRUCT, what);
  for (let i = 0; i < n; i++) {
    // i64 keys go through a JS number, as the generated code does.
    const k = keyType === T.I64 ? String(r.i64()) : r.string();
    put(out, k, readValue(r));
  }
  return out;
}

export function writeExtensionList(w: WireWriter, list: InternalExtensionList): void {
  writeStructMap(w, list, T.I64, writeExtensionInfo);
}

export function readExtensionList(r: WireReader): InternalExtensionList {
  return readStructMap(r, T.I64, readExtensionInfo, 'InternalExtensionList');
}

export function writeOptionList(w: WireWriter, list: InternalOptionList): void {
  writeStructMap(w, list, T.STRING, writeOptionInfo);
}

export function readOptionList(r: WireReader): InternalOptionList {
  return readStructMap(r, T.STRING, readOptionInfo, 'InternalOptionList');
}
