/**
 * Every method of the Extension and ExtensionManager services: how its
 * arguments and its result are encoded and decoded (result field 0 is the
 * return value; `shutdown` returns nothing). Arguments travel as the tuple the
 * handler is called with.
 */
import { MAX_REQUEST_ENTRIES, T } from './constants.js';
import type { WireReader } from './reader.js';
import type { WireWriter } from './writer.js';
import {
  readExtensionInfo,
  readExtensionList,
  readOptionList,
  readRegistry,
  readResponse,
  readStatus,
  readStringMap,
  writeExtensionInfo,
  writeExtensionList,
  writeOptionList,
  writeRegistry,
  writeResponse,
  writeStatus,
  writeStringMap,
} from './structs.js';
import type {
  ExtensionRegistry,
  ExtensionResponse,
  ExtensionStatus,
  InternalExtensionInfo,
  InternalExtensionList,
  InternalOptionList,
  PluginRequest,
} from '../protocol.js';

/** One argument or result field: its id, wire type, writer and reader. */
interface Field<V> {
  id: number;
  type: number;
  write(w: WireWriter, v: V): void;
  read(r: WireReader): V;
  /** Decoded value when the field is absent. */
  absent: () => V;
}

const stringField = (id: number): Field<string> => ({
  id,
  type: T.STRING,
  write: (w, v) => w.string(v),
  read: (r) => r.string(),
  absent: () => '',
});

const statusField: Field<ExtensionStatus> = {
  id: 0,
  type: T.STRUCT,
  write: writeStatus,
  read: readStatus,
  absent: () => ({ code: 0, message: '', uuid: 0 }),
};
const responseField: Field<ExtensionResponse> = {
  id: 0,
  type: T.STRUCT,
  write: writeResponse,
  read: readResponse,
  absent: () => ({ status: { code: 0, message: '', uuid: 0 }, response: [] }),
};

export interface MethodCodec {
  readonly name: string;
  /** Argument fields in id order; the handler gets their values as its parameters. */
  readonly args: readonly Field<never>[];
  /** The result's field 0, or undefined for a void method. */
  readonly result: Field<never> | undefined;
}

function method(name: string, args: Field<never>[], result: Field<never> | undefined): MethodCodec {
  return { name, args, result };
}

const f = <V>(x: Field<V>) => x as unknown as Field<never>;

export const METHODS: Readonly<Record<string, MethodCodec>> = {
  ping: method('ping', [], f(statusField)),
  call: method(
    'call',
    [
      f(stringField(1)),
      f(stringField(2)),
      f<PluginRequest>({
        id: 3,
        type: T.MAP,
        write: (w, v) => writeStringMap(w, v, 'call request'),
        read: (r) => readStringMap(r, 'call request', MAX_REQUEST_ENTRIES),
        absent: () => ({}),
      }),
    ],
    f(responseField),
  ),
  shutdown: method('shutdown', [], undefined),
  extensions: method(
    'extensions',
    [],
    f<InternalExtensionList>({ id: 0, type: T.MAP, write: writeExtensionList, read: readExtensionList, absent: () => ({}) }),
  ),
  options: method(
    'options',
    [],
    f<InternalOptionList>({ id: 0, type: T.MAP, write: writeOptionList, read: readOptionList, absent: () => ({}) }),
  ),
  registerExtension: method(
    'registerExtension',
    [
      f<InternalExtensionInfo>({
        id: 1,
        type: T.STRUCT,
        write: writeExtensionInfo,
        read: readExtensionInfo,
        absent: () => ({ name: '', version: '', sdk_version: '', min_sdk_version: '' }),
      }),
      f<ExtensionRegistry>({ id: 2, type: T.MAP, write: writeRegistry, read: readRegistry, absent: () => ({}) }),
    ],
    f(statusField),
  ),
  deregisterExtension: method(
    'deregisterExtension',
    [f<number>({ id: 1, type: T.I64, write: (w, v) => w.i64(v), read: (r) => r.i64(), absent: () => 0 })],
    f(statusField),
  ),
  query: method('query', [f(stringField(1))], f(responseField)),
  getQueryColumns: method('getQueryColumns', [f(stringField(1))], f(responseField)),
};

export const EXTENSION_METHODS: ReadonlySet<string> = new Set(['ping', 'call', 'shutdown']);
export const MANAGER_METHODS: ReadonlySet<string> = new Set(Object.keys(METHODS));

/** Write the args struct; null/undefined arguments are left out, as generated code does. */
export function writeArgs(w: WireWriter, m: MethodCodec, args: readonly unknown[]): void {
  for (let i = 0; i < m.args.length; i++) {
    const v = args[i];
    if (v === null || v === undefined) continue;
    const a = m.args[i]!;
    w.fieldBegin(a.type, a.id);
    a.write(w, v as never);
  }
  w.fieldStop();
}

/** Read the args struct into the handler's parameter list, absent ones defaulted. */
export function readArgs(r: WireReader, m: MethodCodec): unknown[] {
  const out: unknown[] = new Array(m.args.length);
  for (let t = r.fieldBegin(); t !== T.STOP; t = r.fieldBegin()) {
    const i = m.args.findIndex((a) => a.id === r.fid);
    if (i >= 0 && m.args[i]!.type === t) out[i] = m.args[i]!.read(r);
    else r.skip(t);
  }
  for (let i = 0; i < out.length; i++) if (out[i] === undefined) out[i] = m.args[i]!.absent();
  return out;
}

/** Write the result struct: field 0 with the value (left out when null/undefined). */
export function writeResult(w: WireWriter, m: MethodCodec, value: unknown): void {
  if (m.result && value !== null && value !== undefined) {
    w.fieldBegin(m.result.type, 0);
    m.result.write(w, value as never);
  }
  w.fieldStop();
}

/** Read the result struct: `{ value }`, value undefined when field 0 is missing (a void method's reply). */
export function readResult(r: WireReader, m: MethodCodec): { value: unknown } {
  let value: unknown;
  for (let t = r.fieldBegin(); t !== T.STOP; t = r.fieldBegin()) {
    if (m.result && r.fid === 0 && t === m.result.type) value = m.result.read(r);
    else r.skip(t);
  }
  return { value };
}
