/**
 * A state table: the supervisor's own state described once, as typed columns
 * over a row type, with one row source. The osquery table plugins each
 * instance serves are derived from these definitions, never from a second
 * column list; each column names the row field it shows, so the compiler
 * checks that every field has a column and a test checks the control API's
 * messages against the same fields (ADR 0006).
 */
import type { ColumnType, QueryContext, Row, TablePlugin } from '../osquery/plugins.js';
import { ColumnOptions, equalityValues } from '../osquery/plugins.js';

/** Who is asking: the vendor instance and admins see everything; a tenant only its own rows. */
export type Scope = { kind: 'all' } | { kind: 'tenant'; registrationId: string };

export type CellValue = string | number | boolean | null | undefined;

type Leaf = string | number | boolean | null | undefined | readonly unknown[];

/** Dotted paths to the leaves of a row type: `'pid'`, `'limits.mode'`, `'buffers.bytes'`. */
export type FieldPath<R> = {
  [K in keyof R & string]-?: NonNullable<R[K]> extends Leaf ? K : `${K}.${FieldPath<NonNullable<R[K]>>}`;
}[keyof R & string];

/** The type of the leaf at `P`. */
export type FieldValue<R, P extends string> = P extends `${infer K}.${infer Rest}`
  ? K extends keyof R
    ? FieldValue<NonNullable<R[K]>, Rest>
    : never
  : P extends keyof R
    ? R[P]
    : never;

export interface StateColumn<R, P extends string = string> {
  name: string;
  type: ColumnType;
  description: string;
  /**
   * The row field this column shows. The control API's messages carry the
   * same fields (test/state/api-consistency.test.ts checks both directions).
   */
  field: P;
  value(row: R): CellValue;
}

/** A column spec; `render` turns the field into a cell and is required when the field is not a cell value already. */
export type ColumnSpec<R, P extends FieldPath<R>> = {
  name: string;
  type: ColumnType;
  description: string;
  field: P;
} & (FieldValue<R, P> extends CellValue
  ? { render?: (value: FieldValue<R, P>) => CellValue }
  : { render: (value: FieldValue<R, P>) => CellValue });

/** The column builder for rows of type `R`: `const column = columnsOf<InstanceInfo>()`. */
export function columnsOf<R>() {
  return <P extends FieldPath<R>>(spec: ColumnSpec<R, P>): StateColumn<R, P> => {
    const keys = spec.field.split('.');
    const render = (spec as { render?: (value: unknown) => CellValue }).render;
    const read = (row: R): unknown => {
      let v: unknown = row;
      for (const k of keys) v = v === null || v === undefined ? undefined : (v as Record<string, unknown>)[k];
      return v;
    };
    return {
      name: spec.name,
      type: spec.type,
      description: spec.description,
      field: spec.field,
      value: render ? (row) => render(read(row)) : (row) => read(row) as CellValue,
    };
  };
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

/** Fields of `R` that no column of `C` shows. */
type Uncovered<R, C extends ReadonlyArray<{ field: string }>> = Exclude<FieldPath<R>, C[number]['field']>;

/**
 * Define a state table whose columns show every field of its row type: a
 * field added to the type without a column (or a column naming a field the
 * type lacks) fails `tsc`, naming the field in `columns_missing_for_fields`.
 */
export function defineStateTable<R, S>() {
  return <const C extends ReadonlyArray<StateColumn<R, FieldPath<R>>>>(
    def: Omit<StateTable<R, S>, 'columns'> & { columns: C } & ([Uncovered<R, C>] extends [never]
        ? unknown
        : { columns_missing_for_fields: Uncovered<R, C> }),
  ): StateTable<R, S> => ({ name: def.name, description: def.description, columns: def.columns, owner: def.owner, rows: def.rows });
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
