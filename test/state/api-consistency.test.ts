// Issue 7: the control API and the state tables describe the same fields. The
// `Instance` and `Run` messages of proto/launcher/v1/launcher.proto (loaded
// with @grpc/proto-loader, as the server loads it) must match, field for
// field, the `field`s of the kolide_launcher_instances and
// kolide_launcher_osquery_instance_history columns, in both directions. A
// field added to the proto without a column, or a column (hence, by the
// compile-time check in src/state/table.ts, a row field) without a proto
// field, fails here unless it is listed below with its reason.
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { findProtoRoot, LOADER_OPTIONS, PROTO_FILE } from '../../src/control/proto.js';
import { fromInstanceMessage, fromRunMessage, toInstanceMessage, toRunMessage } from '../../src/control/mapping.js';
import { historyTable, instancesTable } from '../../src/state/tables.js';
import type { InstanceInfo, RunRecord } from '../../src/state/types.js';

const PACKAGE = 'launcher.v1';

/**
 * Where the API's field name differs from the row field (src/state/types.ts)
 * the columns declare. Only these; every other field has the same dotted path
 * in both (nested messages are nested objects: `limits.memory_mb`).
 * - times: the API spells the unit in the name (`_unix_ms`), the row types
 *   are epoch ms by convention and carry none;
 * - Run.osqueryd_version is `version` in the row, as launcher's history
 *   table names the column.
 */
const RENAMED: Record<'Instance' | 'Run', Record<string, string>> = {
  Instance: { started_at_unix_ms: 'started_at', connected_at_unix_ms: 'connected_at', 'device.since_unix_ms': 'device.since' },
  Run: {
    start_time_unix_ms: 'start_time',
    connect_time_unix_ms: 'connect_time',
    exit_time_unix_ms: 'exit_time',
    osqueryd_version: 'version',
  },
};

/**
 * Row fields shown as columns but not (yet) in the API. The API is add-only
 * (ADR 0003): adding them to `Run` is allowed later, and then they leave this list.
 */
const TABLE_ONLY: Record<'Instance' | 'Run', string[]> = {
  Instance: [],
  // launcher's history columns; the control API's `ctl history` does not show them.
  Run: ['hostname', 'instance_id'],
};

interface FieldDescriptor {
  name: string;
  type: string;
  typeName: string;
}

const definition = protoLoader.loadSync(PROTO_FILE, { ...LOADER_OPTIONS, includeDirs: [findProtoRoot()] });

function messageType(name: string): protoLoader.MessageTypeDefinition<unknown, unknown> {
  const qualified = name.startsWith('.') ? name.slice(1) : name.includes('.') ? name : `${PACKAGE}.${name}`;
  const t = definition[qualified] as protoLoader.MessageTypeDefinition<unknown, unknown> | undefined;
  if (!t || !('type' in t)) throw new Error(`message ${qualified} not found in ${PROTO_FILE}`);
  return t;
}

/** Dotted paths of a message's scalar fields, nested messages flattened. */
function protoLeaves(message: string, prefix = ''): string[] {
  const fields = (messageType(message).type as { field: FieldDescriptor[] }).field;
  return fields.flatMap((f) => (f.type === 'TYPE_MESSAGE' ? protoLeaves(f.typeName, `${prefix}${f.name}.`) : [`${prefix}${f.name}`]));
}

const get = (obj: unknown, path: string): unknown =>
  path.split('.').reduce<unknown>((v, k) => (v === null || v === undefined ? undefined : (v as Record<string, unknown>)[k]), obj);

/** Encode and decode through the real protobuf codec, as the wire does. */
function wire<T>(message: string, value: unknown): T {
  const t = messageType(message);
  return t.deserialize(t.serialize(value)) as T;
}

/** Only the columns' fields matter here, whatever the table's row type. */
function compare(message: 'Instance' | 'Run', table: { columns: ReadonlyArray<{ field: string }> }) {
  const toRow = (p: string) => RENAMED[message][p] ?? p;
  const apiFields = protoLeaves(message).map(toRow);
  const columnFields = [...new Set(table.columns.map((c) => c.field))];
  return {
    apiFields,
    /** API fields no column shows. */
    apiWithoutColumn: apiFields.filter((f) => !columnFields.includes(f)),
    /** Column fields the API lacks, beyond the documented ones. */
    columnWithoutApi: columnFields.filter((f) => !apiFields.includes(f) && !TABLE_ONLY[message].includes(f)),
    /** Documented exceptions that are no longer true (keep the lists honest). */
    staleExceptions: [
      ...Object.entries(RENAMED[message])
        .filter(([p, f]) => !protoLeaves(message).includes(p) || !columnFields.includes(f))
        .map(([p]) => p),
      ...TABLE_ONLY[message].filter((f) => apiFields.includes(f) || !columnFields.includes(f)),
    ],
  };
}

// Every field set and distinct from its default, so a dropped mapping shows.
const instance: InstanceInfo = {
  id: 'acme',
  state: 'running',
  pid: 4242,
  run_id: '01JD5Y3W6T0000000000000000',
  started_at: 1_763_700_000_123,
  connected_at: 1_763_700_001_456,
  uptime_seconds: 12.5,
  healthy: true,
  restarts: 3,
  last_error: 'health check failed',
  limits: { memory_mb: 300, cpu_percent: 20, mode: 'watchdog' },
  buffers: { result_count: 7, status_count: 8, bytes: 9000, dropped: 2 },
  osqueryd_path: '/opt/osquery/bin/osqueryd',
  osqueryd_version: '5.12.1',
  device: { state: 'failing', error: 'enroll: node_invalid', since: 1_763_700_002_789 },
  device_url: 'https://eu.device.example',
  isolation: { mode: 'unavailable', reason: 'mount namespaces need root', disabled_tables: 'curl,carves' },
};

const run: RunRecord = {
  registration_id: 'acme',
  run_id: '01JD5Y3W6T0000000000000001',
  osqueryd_path: '/opt/osquery/bin/osqueryd',
  version: '5.12.1',
  pid: 4243,
  start_time: 1_763_700_000_123,
  connect_time: 1_763_700_001_456,
  exit_time: 1_763_700_099_789,
  exit_code: 137,
  signal: 'SIGKILL',
  error: 'osqueryd exited (signal SIGKILL)',
};

describe('control API messages ↔ state table columns', () => {
  it('every Instance field is a kolide_launcher_instances column field, and every column field an Instance field', () => {
    const c = compare('Instance', instancesTable);
    expect(c.apiFields.length).toBeGreaterThan(10);
    expect(c.apiWithoutColumn).toEqual([]);
    expect(c.columnWithoutApi).toEqual([]);
    expect(c.staleExceptions).toEqual([]);
  });

  it('every Run field is a kolide_launcher_osquery_instance_history column field, and back (except the documented ones)', () => {
    const c = compare('Run', historyTable);
    expect(c.apiFields.length).toBeGreaterThan(8);
    expect(c.apiWithoutColumn).toEqual([]);
    expect(c.columnWithoutApi).toEqual([]);
    expect(c.staleExceptions).toEqual([]);
  });

  it('the control API mapping carries each Instance field to the proto field the list above names', () => {
    const msg = wire<Record<string, unknown>>('Instance', toInstanceMessage(instance));
    for (const p of protoLeaves('Instance')) {
      const field = RENAMED.Instance[p] ?? p;
      expect(String(get(msg, p)), `Instance.${p} ← ${field}`).toBe(String(get(instance, field)));
    }
    expect(fromInstanceMessage(msg as never)).toEqual(instance);
  });

  it('the control API mapping carries each Run field to the proto field the list above names', () => {
    const msg = wire<Record<string, unknown>>('Run', toRunMessage(run));
    for (const p of protoLeaves('Run')) {
      const field = RENAMED.Run[p] ?? p;
      expect(String(get(msg, p)), `Run.${p} ← ${field}`).toBe(String(get(run, field)));
    }
    expect(fromRunMessage(msg as never)).toEqual(run);
  });

  it('a proto field without a column is caught (the check is not vacuous)', () => {
    const fewer = { ...instancesTable, columns: instancesTable.columns.filter((c) => c.field !== 'buffers.dropped') };
    expect(compare('Instance', fewer).apiWithoutColumn).toEqual(['buffers.dropped']);
    const more = { ...historyTable, columns: [...historyTable.columns, { ...historyTable.columns[0]!, field: 'limits_mode' }] };
    expect(compare('Run', more).columnWithoutApi).toEqual(['limits_mode']);
  });
});
