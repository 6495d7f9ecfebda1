/**
 * The stand-in's SQL engine: one in-memory SQLite database (the SQLite WASM
 * build, wasm-sqlite.ts) holding a real table per osquery table, filled on
 * demand. For each query only the tables its statements name are generated: core tables from this
 * machine, extension tables through the extension's `generate` (with a
 * context built from the statement). Rows are gathered first (async: an
 * extension call), then filled, queried and cleared in one synchronous step,
 * so concurrent queries never see each other's rows.
 *
 * Results follow docs/protocol/osquery-extensions.md#query: strings for every value, duplicate column
 * names collapsed (the last wins), keys in sorted order, SQLite's own error
 * message on failure. Several `;`-separated statements are run in order and
 * their rows concatenated.
 *
 * SQL from outside may only read (authorizer.ts, adr/0008): every outside
 * statement is compiled and stepped with the authorizer on, and must be
 * read-only and return columns; the engine's own statements (table
 * creation, filling, clearing) run with it off. Each statement is compiled
 * once per query, before any table is generated.
 */
import type { FaultController } from '../faults.js';
import type { QueryLog, QuerySource } from '../query-log.js';
import { authorizeOutside, NOT_AUTHORIZED, readOnlyQuery } from './authorizer.js';
import { MemoryDatabase, type CompiledStatement } from './wasm-sqlite.js';
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
  insert: CompiledStatement;
  clear: CompiledStatement;
}

export class SqlEngine {
  private readonly db: MemoryDatabase;
  private readonly tables = new Map<string, Attached>();
  private readonly options: SqlEngineOptions;
  /** True while outside SQL is compiled or stepped (a statement may recompile, or a pragma table compile SQL, while it steps). */
  private outside = false;
  private readonly begin: CompiledStatement;
  private readonly commit: CompiledStatement;
  private readonly rollback: CompiledStatement;

  constructor(options: SqlEngineOptions) {
    this.options = options;
    this.db = new MemoryDatabase();
    this.db.setAuthorizer((action, arg1, arg2, database) => (this.outside ? authorizeOutside(action, arg1, arg2, database) : 0));
    this.db.forbidAttach();
    this.db.boundMemory();
    this.db.exec('PRAGMA trusted_schema = OFF');
    // The WASM build has no load_extension(); a stub makes the authorizer refuse it as "not authorized".
    for (const arity of [1, 2]) this.db.defineRefusedFunction('load_extension', arity, NOT_AUTHORIZED);
    this.begin = this.db.prepare('BEGIN');
    this.commit = this.db.prepare('COMMIT');
    this.rollback = this.db.prepare('ROLLBACK');
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
    const attached = this.tables.get(name.toLowerCase());
    if (!attached) return;
    this.tables.delete(name.toLowerCase());
    attached.insert.finalize();
    attached.clear.finalize();
    this.db.exec(`DROP TABLE IF EXISTS ${quoteIdent(name)}`);
  }

  spec(name: string): TableSpec | undefined {
    return this.tables.get(name.toLowerCase())?.provider.spec;
  }

  /** Run a query. Logged to the query log and checked against crash_on_query first. */
  async query(text: string, source: QuerySource, name: string): Promise<QueryResult> {
    // osqueryd hands SQLite a C string: nothing after a NUL byte exists for it, so nothing after one may reach the
    // tokenizer, the constraint contexts or the query log either.
    const nul = text.indexOf('\0');
    const sql = nul === -1 ? text : text.slice(0, nul);
    this.options.queryLog?.append(source, name, sql);
    const hung = this.options.faults?.checkQuery(sql);
    if (hung) await hung;
    const statements = splitStatements(sql);
    // Syntax errors, unknown tables and columns are reported before any table
    // is generated (as SQLite fails at prepare time), and so are refusals.
    const compiled: CompiledStatement[] = [];
    try {
      try {
        this.withOutside(() => {
          for (const st of statements) compiled.push(this.compileOutside(st.sql));
        });
      } catch (err) {
        return { ok: false, message: (err as Error).message };
      }
      let generated: Map<string, SqlValue[][]>;
      try {
        generated = await this.generateAll(statements);
      } catch (err) {
        return { ok: false, message: err instanceof Error ? err.message : String(err) };
      }
      return this.execute(compiled, generated);
    } finally {
      for (const stmt of compiled) stmt.finalize();
    }
  }

  /** getQueryColumns: the first statement is prepared, not run. One `{name: type}` row per column. */
  columns(sql: string): QueryResult {
    const first = splitStatements(sql)[0];
    if (!first) return { ok: true, rows: [], columns: [] };
    try {
      return this.withOutside(() => {
        const stmt = this.compileOutside(first.sql);
        try {
          const columns = resultColumns(stmt);
          return { ok: true, rows: columns.map((c) => ({ [c.name]: c.type })), columns };
        } finally {
          stmt.finalize();
        }
      });
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
  }

  /** Run `fn` with the authorizer on: the only way outside SQL reaches SQLite. */
  private withOutside<T>(fn: () => T): T {
    this.outside = true;
    try {
      return fn();
    } finally {
      this.outside = false;
    }
  }

  /** Compile one outside statement (inside withOutside): denied actions fail here, and so does anything but a read. */
  private compileOutside(sql: string): CompiledStatement {
    const stmt = this.db.prepare(sql);
    if (!readOnlyQuery(stmt)) {
      stmt.finalize();
      throw new Error(NOT_AUTHORIZED);
    }
    return stmt;
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
        out.set(
          name,
          rows.map((r) => spec.columns.map((c) => toSqlValue(r[c.name], c.type))),
        );
      }),
    );
    return out;
  }

  /** Replace a table's rows in one transaction (the engine's own SQL, authorizer off). */
  private fill(attached: Attached, rows: SqlValue[][]): void {
    this.begin.run();
    try {
      attached.clear.run();
      for (const r of rows) attached.insert.run(r);
      this.commit.run();
    } catch (err) {
      this.rollback.run();
      throw err;
    }
  }

  private execute(compiled: CompiledStatement[], generated: Map<string, SqlValue[][]>): QueryResult {
    const filled: Attached[] = [];
    try {
      for (const [name, rows] of generated) {
        const attached = this.tables.get(name);
        if (!attached) continue; // detached meanwhile: SQLite reports "no such table"
        filled.push(attached);
        this.fill(attached, rows);
      }
      const nullvalue = this.options.nullvalue();
      const rows: Row[] = [];
      let columns: ColumnInfo[] | undefined;
      this.withOutside(() => {
        for (const stmt of compiled) {
          const cols = resultColumns(stmt);
          columns ??= cols;
          while (stmt.step()) {
            const row = new Map<string, string>();
            cols.forEach((c, i) => {
              row.set(c.name, renderValue(stmt.value(i), nullvalue));
            });
            rows.push(Object.fromEntries([...row.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
          }
        }
      });
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

function resultColumns(stmt: CompiledStatement): ColumnInfo[] {
  return Array.from({ length: stmt.columnCount }, (_, i) => ({
    name: stmt.columnName(i),
    type: normalizeColumnType(stmt.columnDecltype(i)),
  }));
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
