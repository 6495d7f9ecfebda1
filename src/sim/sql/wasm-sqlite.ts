/**
 * The stand-in's query database: the official SQLite WebAssembly build
 * (`@sqlite.org/sqlite-wasm`), in memory. Chosen over better-sqlite3 for one
 * reason (adr/0008): it exposes `sqlite3_set_authorizer`, so outside SQL is
 * checked inside SQLite's own compiler, as osqueryd does. Its Node VFS is an
 * in-memory file system, so even an ATTACH or VACUUM INTO that got past the
 * authorizer could not reach a host file.
 *
 * This file is the only one that touches the package: it narrows its loose
 * typings to the few calls the engine makes. The module loads once per
 * process (top-level await, ~40 ms); `main.ts` imports the daemon lazily, so
 * `--help` and `--version` never pay for it.
 */
import sqlite3InitModule from '@sqlite.org/sqlite-wasm';
import type { SqlValue } from './values.js';

/** SQLite result codes used here (sqlite3.h). */
const SQLITE_ROW = 100;
const SQLITE_DONE = 101;
const SQLITE_INTEGER = 1;
const SQLITE_FLOAT = 2;
const SQLITE_NULL = 5;
const SQLITE_LIMIT_ATTACHED = 7;
const SQLITE_LIMIT_LENGTH = 0;
const SQLITE_LIMIT_SQL_LENGTH = 1;
/** Largest string or blob a query may build (SQLite's default is 1e9: one query could hold a gigabyte of WASM memory, which never shrinks). */
const MAX_VALUE_BYTES = 16 * 1024 * 1024;
/** Longest SQL text (osquery's own queries are far shorter). */
const MAX_SQL_BYTES = 1024 * 1024;

type Pointer = number;
export type AuthorizerCallback = (
  action: number,
  arg1: string | null,
  arg2: string | null,
  db: string | null,
  trigger: string | null,
) => number;

interface Capi {
  sqlite3_errmsg(db: Pointer): string;
  sqlite3_set_authorizer(
    db: Pointer,
    cb: (u: Pointer, code: number, a: string | 0, b: string | 0, c: string | 0, d: string | 0) => number,
    u: Pointer,
  ): number;
  sqlite3_limit(db: Pointer, id: number, value: number): number;
  sqlite3_step(stmt: Pointer): number;
  sqlite3_reset(stmt: Pointer): number;
  sqlite3_stmt_readonly(stmt: Pointer): number;
  sqlite3_column_count(stmt: Pointer): number;
  sqlite3_column_name(stmt: Pointer, i: number): string;
  sqlite3_column_decltype(stmt: Pointer, i: number): string | null;
  sqlite3_column_type(stmt: Pointer, i: number): number;
  sqlite3_column_int64(stmt: Pointer, i: number): bigint;
  sqlite3_column_double(stmt: Pointer, i: number): number;
  sqlite3_column_text(stmt: Pointer, i: number): string | null;
}

interface OoStatement {
  pointer: Pointer | undefined;
  bind(values: SqlValue[]): unknown;
  stepReset(): unknown;
  finalize(): unknown;
}

interface OoDatabase {
  pointer: Pointer | undefined;
  exec(sql: string): unknown;
  prepare(sql: string): OoStatement;
  createFunction(name: string, fn: (ctx: Pointer, ...args: unknown[]) => unknown, opts: { arity: number }): unknown;
}

interface Sqlite3 {
  capi: Capi;
  /** Console hooks the oo1 layer writes to (e.g. a warning on every failed step). */
  config: { warn: (...args: unknown[]) => void; log: (...args: unknown[]) => void; debug: (...args: unknown[]) => void };
  oo1: { DB: new (filename: string, flags: string) => OoDatabase };
}

// The package's own typings cover part of this surface, and loosely
// (sqlite3_column_decltype is missing); the cast is confined to this line.
const sqlite3 = (await sqlite3InitModule({ print: () => {}, printErr: () => {} })) as unknown as Sqlite3;
const capi = sqlite3.capi;
// Errors reach callers as exceptions; nothing of the library's own may land on stderr, which carries glog lines.
sqlite3.config.warn = sqlite3.config.log = sqlite3.config.debug = () => {};

/** A failure with SQLite's own message (sqlite3_errmsg), as osqueryd reports it. */
export class SqliteFailure extends Error {}

/** One compiled statement. Always `finalize()` it: WASM memory is not garbage collected. */
export class CompiledStatement {
  private readonly stmt: OoStatement;
  private readonly db: MemoryDatabase;

  constructor(db: MemoryDatabase, stmt: OoStatement) {
    this.db = db;
    this.stmt = stmt;
  }

  private get ptr(): Pointer {
    if (this.stmt.pointer === undefined) throw new SqliteFailure('statement already finalized');
    return this.stmt.pointer;
  }

  /** sqlite3_stmt_readonly: the statement makes no direct change to any database file. */
  get readonly(): boolean {
    return capi.sqlite3_stmt_readonly(this.ptr) !== 0;
  }

  get columnCount(): number {
    return capi.sqlite3_column_count(this.ptr);
  }

  columnName(i: number): string {
    return capi.sqlite3_column_name(this.ptr, i);
  }

  /** Declared type of a result column taken straight from a table, undefined for expressions. */
  columnDecltype(i: number): string | undefined {
    return capi.sqlite3_column_decltype(this.ptr, i) ?? undefined;
  }

  /** Next row: true when one is ready, false when done. Runtime errors throw with SQLite's message. */
  step(): boolean {
    const rc = capi.sqlite3_step(this.ptr);
    if (rc === SQLITE_ROW) return true;
    if (rc === SQLITE_DONE) return false;
    const message = this.db.errmsg();
    capi.sqlite3_reset(this.ptr);
    throw new SqliteFailure(message);
  }

  /** Column i of the current row: bigint for integers, number for reals, text (also for blobs, as osqueryd) or null. */
  value(i: number): SqlValue {
    switch (capi.sqlite3_column_type(this.ptr, i)) {
      case SQLITE_INTEGER:
        return capi.sqlite3_column_int64(this.ptr, i);
      case SQLITE_FLOAT:
        return capi.sqlite3_column_double(this.ptr, i);
      case SQLITE_NULL:
        return null;
      default:
        return capi.sqlite3_column_text(this.ptr, i) ?? '';
    }
  }

  /** Bind, run to completion and reset: for the engine's own INSERT/DELETE. */
  run(values: SqlValue[] = []): void {
    try {
      if (values.length > 0) this.stmt.bind(values);
      this.stmt.stepReset();
    } catch {
      const message = this.db.errmsg();
      capi.sqlite3_reset(this.ptr);
      throw new SqliteFailure(message);
    }
  }

  finalize(): void {
    this.stmt.finalize();
  }
}

export class MemoryDatabase {
  private readonly db: OoDatabase;

  constructor() {
    this.db = new sqlite3.oo1.DB(':memory:', 'c');
  }

  private get ptr(): Pointer {
    if (this.db.pointer === undefined) throw new SqliteFailure('database closed');
    return this.db.pointer;
  }

  errmsg(): string {
    return capi.sqlite3_errmsg(this.ptr);
  }

  /** The stand-in's own SQL only. */
  exec(sql: string): void {
    try {
      this.db.exec(sql);
    } catch {
      throw new SqliteFailure(this.errmsg());
    }
  }

  /** Compile one statement; a compile error or an authorizer denial throws with SQLite's message. */
  prepare(sql: string): CompiledStatement {
    let stmt: OoStatement;
    try {
      stmt = this.db.prepare(sql);
    } catch {
      throw new SqliteFailure(this.errmsg());
    }
    return new CompiledStatement(this, stmt);
  }

  /** sqlite3_set_authorizer: called while SQLite compiles every statement on this connection. */
  setAuthorizer(cb: AuthorizerCallback): void {
    const str = (s: string | 0): string | null => (s === 0 ? null : s);
    const rc = capi.sqlite3_set_authorizer(this.ptr, (_u, code, a, b, c, d) => cb(code, str(a), str(b), str(c), str(d)), 0);
    if (rc !== 0) throw new SqliteFailure(`sqlite3_set_authorizer failed: ${this.errmsg()}`);
  }

  /** sqlite3_limit(SQLITE_LIMIT_ATTACHED, 0): ATTACH fails even if allowed. */
  forbidAttach(): void {
    capi.sqlite3_limit(this.ptr, SQLITE_LIMIT_ATTACHED, 0);
  }

  /** Bound what one query can make SQLite allocate: value length, SQL length, and the heap as a whole. */
  boundMemory(): void {
    capi.sqlite3_limit(this.ptr, SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES);
    capi.sqlite3_limit(this.ptr, SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES);
    this.exec('PRAGMA hard_heap_limit = 268435456');
  }

  /** A scalar SQL function whose body fails; used for names that must exist only to be denied. */
  defineRefusedFunction(name: string, arity: number, message: string): void {
    this.db.createFunction(
      name,
      () => {
        throw new Error(message);
      },
      { arity },
    );
  }
}
