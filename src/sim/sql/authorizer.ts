/**
 * What SQL from outside (Thrift `query`/`getQueryColumns`, the `sql` plugin,
 * scheduled, distributed, discovery and decorator queries) may do: read.
 *
 * osqueryd sets an SQLite authorizer on every connection (osquery
 * sqlite_util.cpp `sqliteAuthorizer`): an allowlist of action codes in which
 * ATTACH and DETACH are absent, and PRAGMA only for a few names. The
 * stand-in does the same in SQLite's own compiler (sqlite3_set_authorizer,
 * adr/0008), and is stricter than osqueryd where osqueryd lets a query
 * change its in-memory database (INSERT/CREATE TABLE/BEGIN are allowed
 * there): the stand-in's tables are real tables holding the rows of the
 * current query, so a query may only read. A denied action fails the whole
 * statement at prepare time with SQLite's message, "not authorized"; the
 * caller answers status code 1 with it, as osqueryd.
 *
 * Two things the authorizer does not see are checked after compiling:
 * VACUUM (incl. VACUUM INTO) and REINDEX call no authorizer, so every
 * statement must also be sqlite3_stmt_readonly and return columns.
 */

/** SQLite's message for SQLITE_AUTH, the one osqueryd's callers see. */
export const NOT_AUTHORIZED = 'not authorized';

const SQLITE_OK = 0;
const SQLITE_DENY = 1;

// Action codes (sqlite3.h).
const SQLITE_PRAGMA = 19;
const SQLITE_READ = 20;
const SQLITE_SELECT = 21;
const SQLITE_FUNCTION = 31;
const SQLITE_RECURSIVE = 33;

/**
 * osqueryd's pragma allowlist (kAllowedSQLitePragmas) without the two that
 * set something (journal_mode with a value, case_sensitive_like). Only read
 * forms: table_info takes a table name as its argument, the others none.
 */
const READ_PRAGMAS = new Map<string, 'arg' | 'none'>([
  ['table_info', 'arg'],
  ['table_xinfo', 'arg'],
  ['function_list', 'none'],
  ['collation_list', 'none'],
  ['journal_mode', 'none'],
]);

/**
 * Functions that reach outside the query (load an extension, hand out a
 * pointer). The WASM build has no load_extension; the engine defines a stub
 * so the refusal reads as on a stock SQLite connection.
 */
const DENIED_FUNCTIONS = new Set(['load_extension', 'fts3_tokenizer', 'fts5', 'readfile', 'writefile', 'edit']);

/** Eponymous virtual tables that compile other SQL or expose pages and statements. */
const DENIED_TABLES = new Set(['sqlite_dbpage', 'dbstat', 'sqlite_stmt', 'bytecode', 'tables_used']);

/**
 * The authorizer decision for one action of an outside statement. `arg1`
 * and `arg2` follow sqlite3_set_authorizer: PRAGMA name and value, table and
 * column for READ, (null, function name) for FUNCTION; `database` is the
 * schema name ("main", "temp").
 */
export function authorizeOutside(action: number, arg1: string | null, arg2: string | null, database: string | null): number {
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    case SQLITE_READ:
      if (database !== null && database !== 'main' && database !== 'temp') return SQLITE_DENY;
      return arg1 !== null && DENIED_TABLES.has(arg1.toLowerCase()) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_FUNCTION:
      return arg2 !== null && DENIED_FUNCTIONS.has(arg2.toLowerCase()) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_PRAGMA: {
      const form = arg1 === null ? undefined : READ_PRAGMAS.get(arg1.toLowerCase());
      if (form === undefined) return SQLITE_DENY;
      if (database !== null && database !== 'main') return SQLITE_DENY;
      return form === 'none' && arg2 !== null ? SQLITE_DENY : SQLITE_OK;
    }
    default:
      // ATTACH, DETACH, INSERT, UPDATE, DELETE, CREATE/DROP/ALTER of anything
      // (tables, views, triggers, indexes, virtual tables), TRANSACTION,
      // SAVEPOINT, ANALYZE and every code SQLite may add later.
      return SQLITE_DENY;
  }
}

/** The post-compile check: a statement that changes nothing and returns rows. */
export function readOnlyQuery(stmt: { readonly: boolean; columnCount: number }): boolean {
  return stmt.readonly && stmt.columnCount > 0;
}
