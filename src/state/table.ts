/**
 * A state table: the supervisor's own state described once, as typed columns
 * over a row type, with one row source. Every view of that state — the osquery
 * table plugins each instance serves, and the control API — is derived from
 * these definitions, never from a second column list.
 */
import type { ColumnType, QueryContext, Row, TablePlugin } from '../osquery/plugins.js';
import { ColumnOptions, equalityValues } from '../osquery/plugins.js';

/** Who is asking: the vendor instance and admins see everything; a tenant only its own rows. */
export type Scope = { kind: 'all' } | { kind: 'tenant'; registrationId: string };

export type CellValue = string | number | boolean | null | undefined;

export interface StateColumn<R> {
  name: string;
  type: ColumnType;
  description: string;
  value(row: R): CellValue;
}

export interface StateTable<R, S> {
  name: string;
  description: string;
  columns: ReadonlyArray<StateColumn<R>>;
  /** The registration a row belongs to; undefined for supervisor-wide rows every scope may see. */
  owner(row: R): string | undefined;
  /**
   * Read rows from the live state. `registrationIds`, when given, is a cheap
   * pre-filter taken from `registration_id = ?` constraints; scoping is applied
   * afterwards by `readRows` whatever the source returns.
   */
  rows(source: S, registrationIds?: readonly string[]): R[];
}

export function inScope(scope: Scope, owner: string | undefined): boolean {
  return scope.kind === 'all' || owner === undefined || owner === scope.registrationId;
}

/** Rows of a table as its scope may see them: enforced here, where rows are produced. */
export function readRows<R, S>(table: StateTable<R, S>, source: S, scope: Scope, registrationIds?: readonly string[]): R[] {
  let ids = registrationIds;
  if (scope.kind === 'tenant') {
    ids = ids ? ids.filter((id) => id === scope.registrationId) : [scope.registrationId];
  }
  return table.rows(source, ids).filter((r) => inScope(scope, table.owner(r)));
}

/** osquery's string rendering of a cell: integers in decimal, booleans as 1/0, null as empty. */
export function renderCell(value: CellValue): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'boolean') return value ? '1' : '0';
  return String(value);
}

export function renderRow<R>(table: { columns: ReadonlyArray<StateColumn<R>> }, row: R): Row {
  const out: Row = {};
  for (const c of table.columns) out[c.name] = renderCell(c.value(row));
  return out;
}

/** The table plugin an instance's extension serves for `scope`. */
export function stateTablePlugin<R, S>(table: StateTable<R, S>, source: () => S, scope: Scope): TablePlugin {
  const hasRegistrationColumn = table.columns.some((c) => c.name === 'registration_id');
  return {
    kind: 'table',
    name: table.name,
    columns: table.columns.map((c) => ({
      name: c.name,
      type: c.type,
      description: c.description,
      // registration_id is indexed so osqueryd forwards `registration_id = ?` to generate().
      options: c.name === 'registration_id' ? ColumnOptions.INDEX : ColumnOptions.DEFAULT,
    })),
    generate: (ctx: QueryContext) => {
      const ids = hasRegistrationColumn ? equalityValues(ctx, 'registration_id') : undefined;
      return readRows(table, source(), scope, ids).map((r) => renderRow(table, r));
    },
  };
}
