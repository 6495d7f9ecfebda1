/**
 * The stand-in's SQL engine: one in-memory SQLite database (better-sqlite3)
 * holding a real table per osquery table, filled on demand. For each query
 * only the tables its statements name are generated: core tables from this
 * machine, extension tables through the extension's `generate` (with a
 * context built from the statement). Rows are gathered first (async: an
 * extension call), then filled, queried and cleared in one synchronous step,
 * so concurrent queries never see each other's rows.
 *
 * Results follow reference §8: strings for every value, duplicate column
 * names collapsed (the last wins), keys in sorted order, SQLite's own error
 * message on failure. Several `;`-separated statements are run in order and
 * their rows concatenated.
 */
import type { FaultController } from '../faults.js';
import type { QueryLog, QuerySource } from '../query-log.js';
import type BetterSqlite3 from 'better-sqlite3';
import { openDatabase, type SqliteDatabase } from '../../store/database.js';
import { ColumnOptions, ConstraintOp } from '../../osquery/plugins.js';
import { buildContext, type TableContext } from './constraints.js';
import { createTableSql, normalizeColumnType, quoteIdent, type TableSpec } from './schema.js';
import { isOp, splitStatements, type Statement, type Token } from './tokenize.js';
import { renderValue, toSqlValue, type SqlValue } from './values.js';

export type Row = Record<string, string>;
export type GeneratedRow = Record<string, unknown>;

export interface TableProvider {
  readonly spec: TableSpec;
  /** Rows for one statement. Throw to fail the query with the error's message. */
  generate(context: TableContext): Promise<GeneratedRow[]> | GeneratedRow[];
}

export interface ColumnInfo {
  name: string;
  type: string;
}

export type QueryResult = { ok: true; rows: Row[]; columns: ColumnInfo[] } | { ok: false; message: string };

export interface SqlEngineOptions {
  queryLog?: QueryLog;
  faults?: FaultController;
  /** `--nullvalue`, read per query (config options may change it). */
  nullvalue: () => string;
  /** `--extensions_default_index`. */
  defaultIndex: () => boolean;
}

interface Attached {
  provider: TableProvider;
  insert: BetterSqlite3.Statement<unknown[]>;
  clear: BetterSqlite3.Statement<unknown[]>;
}

export class SqlEngine {
  private readonly db: SqliteDatabase;
  private readonly tables = new Map<string, Attached>();
  private readonly options: SqlEngineOptions;

  constructor(options: SqlEngineOptions) {
    this.options = options;
    this.db = openDatabase(':memory:');
  }

  addTable(provider: TableProvider): void {
    const spec = provider.spec;
    this.db.exec(createTableSql(spec));
    const placeholders = spec.columns.map(() => '?').join(', ');
    this.tables.set(spec.name.toLowerCase(), {
      provider,
      insert: this.db.prepare(`INSERT INTO ${quoteIdent(spec.name)} VALUES (${placeholders})`),
      clear: this.db.prepare(`DELETE FROM ${quoteIdent(spec.name)}`),
    });
  }

  removeTable(name: string): void {
    if (!this.tables.delete(name.toLowerCase())) return;
    this.db.exec(`DROP TABLE IF EXISTS ${quoteIdent(name)}`);
  }

  spec(name: string): TableSpec | undefined {
    return this.tables.get(name.toLowerCase())?.provider.spec;
  }

  /** Run a query. Logged to the query log and checked against crash_on_query first. */
  async query(sql: string, source: QuerySource, name: string): Promise<QueryResult> {
    this.options.queryLog?.append(source, name, sql);
    this.options.faults?.checkQuery(sql);
    const statements = splitStatements(sql);
    const early = this.prepareError(statements);
    if (early !== undefined) return { ok: false, message: early };
    let generated: Map<string, SqlValue[][]>;
    try {
      generated = await this.generateAll(statements);
    } catch (err) {
      return { ok: false, message: err instanceof Error ? err.message : String(err) };
    }
    return this.execute(statements, generated);
  }

  /** getQueryColumns: the first statement is prepared, not run. One `{name: type}` row per column. */
  columns(sql: string): QueryResult {
    const first = splitStatements(sql)[0];
    if (!first) return { ok: true, rows: [], columns: [] };
    try {
      const stmt = this.db.prepare(first.sql);
      if (!stmt.reader) return { ok: true, rows: [], columns: [] };
      const columns = stmt.columns().map((c) => ({ name: c.name, type: normalizeColumnType(c.type ?? undefined) }));
      return { ok: true, rows: columns.map((c) => ({ [c.name]: c.type })), columns };
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
  }

  /**
   * Syntax errors, unknown tables and columns are reported before any table
   * is generated (as SQLite fails at prepare time). Statements after DDL may
   * depend on it, so only the ones up to the first non-query are checked.
   */
  private prepareError(statements: Statement[]): string | undefined {
    for (const st of statements) {
      try {
        if (!this.db.prepare(st.sql).reader) return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    }
    return undefined;
  }

  private referenced(tokens: Token[]): string[] {
    const names = new Set<string>();
    tokens.forEach((t, i) => {
      if (t.kind === 'ident' && this.tables.has(t.lower) && !isOp(tokens[i - 1], '.') && !isOp(tokens[i + 1], '(')) names.add(t.lower);
    });
    return [...names];
  }

  private async generateAll(statements: Statement[]): Promise<Map<string, SqlValue[][]>> {
    const perStatement = statements.map((s) => this.referenced(s.tokens));
    const all = [...new Set(perStatement.flat())];
    const out = new Map<string, SqlValue[][]>();
    await Promise.all(
      all.map(async (name) => {
        const attached = this.tables.get(name)!;
        const spec = attached.provider.spec;
        const where = perStatement.flatMap((refs, i) => (refs.includes(name) ? [i] : []));
        const single = where.length === 1 ? where[0]! : undefined;
        const others = single === undefined ? [] : perStatement[single]!.filter((n) => n !== name).flatMap((n) => this.spec(n) ?? []);
        const ctx = buildContext(single === undefined ? undefined : statements[single]!.tokens, spec, others, this.options.defaultIndex());
        checkRequired(spec, ctx);
        const rows = await attached.provider.generate(ctx);
        out.set(name, rows.map((r) => spec.columns.map((c) => toSqlValue(r[c.name], c.type))));
      }),
    );
    return out;
  }

  private execute(statements: Statement[], generated: Map<string, SqlValue[][]>): QueryResult {
    const filled: Attached[] = [];
    try {
      for (const [name, rows] of generated) {
        const attached = this.tables.get(name);
        if (!attached) continue; // detached meanwhile: SQLite reports "no such table"
        filled.push(attached);
        this.db.transaction(() => {
          attached.clear.run();
          for (const r of rows) attached.insert.run(...r);
        })();
      }
      const nullvalue = this.options.nullvalue();
      const rows: Row[] = [];
      let columns: ColumnInfo[] | undefined;
      for (const st of statements) {
        const stmt = this.db.prepare(st.sql);
        if (!stmt.reader) {
          stmt.run();
          continue;
        }
        stmt.safeIntegers(true);
        stmt.raw(true);
        const cols = stmt.columns();
        columns ??= cols.map((c) => ({ name: c.name, type: normalizeColumnType(c.type ?? undefined) }));
        for (const values of stmt.all() as unknown[][]) {
          const row = new Map<string, string>();
          cols.forEach((c, i) => row.set(c.name, renderValue(values[i], nullvalue)));
          rows.push(Object.fromEntries([...row.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
        }
      }
      return { ok: true, rows, columns: columns ?? [] };
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    } finally {
      for (const attached of filled) {
        if (this.tables.get(attached.provider.spec.name.toLowerCase()) === attached) attached.clear.run();
      }
    }
  }
}

function checkRequired(spec: TableSpec, ctx: TableContext): void {
  for (const c of spec.columns) {
    if ((c.options & ColumnOptions.REQUIRED) === 0) continue;
    const entry = ctx.constraints.find((x) => x.name === c.name);
    if (!entry?.list.some((x) => x.op === ConstraintOp.EQUALS)) {
      throw new Error(`Table ${spec.name} was queried without a required column in the WHERE clause`);
    }
  }
}
