/**
 * osqueryd's result-log JSON (docs/protocol/osquery-extensions.md#result-logs): the differential event form
 * (one line per removed/added row), the batch form (`diffResults`) and
 * snapshots, with the common fields in osqueryd's order.
 */
import type { ColumnInfo, Row } from './sql/engine.js';

export interface ResultMeta {
  name: string;
  hostIdentifier: string;
  calendarTime: string;
  unixTime: number;
  epoch: number;
  counter: number;
  numerics: boolean;
  decorations: Record<string, string>;
  decorationsTopLevel: boolean;
  /** Result column types, for --logger_numerics. */
  columns: ColumnInfo[];
}

export interface Diff {
  added: Row[];
  removed: Row[];
}

const rowKey = (r: Row) => JSON.stringify(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** Multiset difference: rows only in `current` are added, rows only in `previous` removed. */
export function diffRows(previous: readonly Row[], current: readonly Row[]): Diff {
  const counts = new Map<string, number>();
  for (const r of previous) counts.set(rowKey(r), (counts.get(rowKey(r)) ?? 0) + 1);
  const added: Row[] = [];
  for (const r of current) {
    const k = rowKey(r);
    const n = counts.get(k) ?? 0;
    if (n > 0) counts.set(k, n - 1);
    else added.push(r);
  }
  const removed: Row[] = [];
  for (const r of previous) {
    const k = rowKey(r);
    const n = counts.get(k) ?? 0;
    if (n > 0) {
      counts.set(k, n - 1);
      removed.push(r);
    }
  }
  return { added, removed };
}

const NUMERIC = new Set(['INTEGER', 'BIGINT', 'UNSIGNED BIGINT', 'DOUBLE']);

function present(meta: ResultMeta, row: Row): Record<string, string | number> {
  if (!meta.numerics) return row;
  const types = new Map(meta.columns.map((c) => [c.name, c.type]));
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(row)) {
    const n = Number(v);
    out[k] = NUMERIC.has(types.get(k) ?? '') && v !== '' && Number.isFinite(n) ? n : v;
  }
  return out;
}

function common(meta: ResultMeta): Record<string, unknown> {
  const o: Record<string, unknown> = {
    name: meta.name,
    hostIdentifier: meta.hostIdentifier,
    calendarTime: meta.calendarTime,
    unixTime: meta.unixTime,
    epoch: meta.epoch,
    counter: meta.counter,
    numerics: meta.numerics,
  };
  if (Object.keys(meta.decorations).length > 0) {
    if (meta.decorationsTopLevel) Object.assign(o, meta.decorations);
    else o.decorations = meta.decorations;
  }
  return o;
}

/** Event form: one line per removed, then per added row. */
export function eventLines(meta: ResultMeta, diff: Diff): string[] {
  const base = common(meta);
  return [
    ...diff.removed.map((r) => JSON.stringify({ ...base, columns: present(meta, r), action: 'removed' })),
    ...diff.added.map((r) => JSON.stringify({ ...base, columns: present(meta, r), action: 'added' })),
  ];
}

/** Batch form: one line with `diffResults`. */
export function batchLine(meta: ResultMeta, diff: Diff): string {
  return JSON.stringify({
    ...common(meta),
    diffResults: { removed: diff.removed.map((r) => present(meta, r)), added: diff.added.map((r) => present(meta, r)) },
  });
}

/** Snapshot: `{snapshot, action:"snapshot", ...common}`, or one event per row with --logger_snapshot_event_type. */
export function snapshotLines(meta: ResultMeta, rows: readonly Row[], eventType: boolean): string[] {
  const base = common(meta);
  if (eventType) return rows.map((r) => JSON.stringify({ ...base, columns: present(meta, r), action: 'snapshot' }));
  return [JSON.stringify({ snapshot: rows.map((r) => present(meta, r)), action: 'snapshot', ...base })];
}
