/**
 * Table schemas as osqueryd knows them: column name, declared type and the
 * ColumnOptions bitmask (docs/protocol/osquery-extensions.md#column-options).
 */
export const COLUMN_TYPES = ['TEXT', 'INTEGER', 'BIGINT', 'UNSIGNED BIGINT', 'DOUBLE', 'BLOB'] as const;

export interface ColumnSpec {
  name: string;
  /** One of COLUMN_TYPES, or UNKNOWN for anything else an extension sent. */
  type: string;
  options: number;
}

export interface TableSpec {
  name: string;
  columns: ColumnSpec[];
}

export function normalizeColumnType(type: string | undefined): string {
  const t = (type ?? '').toUpperCase();
  return (COLUMN_TYPES as readonly string[]).includes(t) ? t : 'UNKNOWN';
}

/** SQLite column declaration for a spec: the declared type is what getQueryColumns reports. */
export function createTableSql(spec: TableSpec): string {
  const cols = spec.columns.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ');
  return `CREATE TABLE ${quoteIdent(spec.name)} (${cols})`;
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
