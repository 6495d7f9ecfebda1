/**
 * Typed plugin interfaces for the four plugin kinds osqueryd calls on an
 * extension, and the translation between them and osqueryd's request and
 * response maps (docs/protocol/osquery-extensions.md#plugins). Plugin code never sees Thrift.
 */
import type { ExtensionResponse, PluginRequest, PluginResponse } from './protocol.js';
import { response, status } from './protocol.js';
import { countContainers, rawJsonElements } from './json-elements.js';
import { errorMessage } from '../errors.js';

export type Row = Record<string, string>;
export type ColumnType = 'TEXT' | 'INTEGER' | 'BIGINT' | 'UNSIGNED BIGINT' | 'DOUBLE' | 'BLOB';

/** ColumnOptions bitmask (docs/protocol/osquery-extensions.md#column-options). */
export const ColumnOptions = {
  DEFAULT: 0,
  INDEX: 1,
  REQUIRED: 2,
  ADDITIONAL: 4,
  OPTIMIZED: 8,
  HIDDEN: 16,
} as const;

/** Constraint operators as osqueryd sends them. */
export const ConstraintOp = {
  EQUALS: 2,
  GREATER_THAN: 4,
  LESS_THAN_OR_EQUALS: 8,
  LESS_THAN: 16,
  GREATER_THAN_OR_EQUALS: 32,
  MATCH: 64,
  LIKE: 65,
  GLOB: 66,
  REGEXP: 67,
} as const;

export interface ColumnDefinition {
  name: string;
  type: ColumnType;
  /** ColumnOptions bitmask; 0 by default. */
  options?: number;
  description?: string;
}

export interface Constraint {
  op: number;
  expr: string;
}

export interface ConstraintList {
  name: string;
  affinity: string;
  list: Constraint[];
}

export interface QueryContext {
  constraints: ConstraintList[];
  colsUsed?: string[];
}

export interface TablePlugin {
  readonly kind: 'table';
  readonly name: string;
  readonly columns: readonly ColumnDefinition[];
  generate(context: QueryContext): Promise<Row[]> | Row[];
}

export interface ConfigPlugin {
  readonly kind: 'config';
  readonly name: string;
  /** Config sources: source name → osquery config JSON text. */
  genConfig(): Promise<Record<string, string>>;
  /** Pack JSON text for a pack given as a string in the config. */
  genPack?(name: string, value: string): Promise<string>;
}

/** A status log line as osqueryd sends it to extensions (short keys). */
export interface StatusLog {
  s: number;
  f: string;
  i: number;
  m: string;
  h: string;
  c: string;
  u: number;
}

export type ResultLogKind = 'string' | 'snapshot' | 'event';

export const LoggerFeatures = { STATUS: 1, EVENTS: 2 } as const;

export interface LoggerPlugin {
  readonly kind: 'logger';
  readonly name: string;
  /** Bitmask of LoggerFeatures answered to `{action: features}` (default: status logs). */
  readonly features?: number;
  init?(name: string): Promise<void> | void;
  /** A result log line: the raw JSON text osqueryd produced, kept as is. */
  logString(text: string, kind: ResultLogKind): Promise<void> | void;
  /** A batch of status logs; `raw` holds each element's JSON text as sent. */
  logStatus(entries: StatusLog[], raw: string[]): Promise<void> | void;
}

export interface DistributedQueries {
  queries: Record<string, string>;
  discovery?: Record<string, string>;
  accelerate?: number;
}

export interface DistributedQueryStats {
  wall_time_ms?: number;
  user_time?: number;
  system_time?: number;
  memory?: number;
}

export interface DistributedResults {
  queries: Record<string, Row[]>;
  statuses: Record<string, number>;
  messages: Record<string, string>;
  stats: Record<string, DistributedQueryStats>;
}

export interface DistributedPlugin {
  readonly kind: 'distributed';
  readonly name: string;
  getQueries(): Promise<DistributedQueries>;
  writeResults(results: DistributedResults): Promise<void>;
}

export type Plugin = TablePlugin | ConfigPlugin | LoggerPlugin | DistributedPlugin;
export type Registry = Plugin['kind'];

/** Route info for a table: one `{id:"column"}` row per column. */
export function tableRoutes(table: Pick<TablePlugin, 'columns'>): PluginResponse {
  return table.columns.map((c) => ({ id: 'column', name: c.name, type: c.type, op: String(c.options ?? 0) }));
}

export function routeInfo(plugin: Plugin): PluginResponse {
  return plugin.kind === 'table' ? tableRoutes(plugin) : [];
}

/**
 * Parse osqueryd's `context` JSON. Accepts the current form and the legacy one
 * (`list: ""`, `op` as a string). Unparseable input gives an empty context; one
 * over JSON_BOUNDS.queryContext throws (the call fails rather than scan unconstrained).
 */
export function parseQueryContext(text: string | undefined): QueryContext {
  if (!text) return { constraints: [] };
  checkShape(text, 'query context', JSON_BOUNDS.queryContext); // refused, not read as "no constraints"
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { constraints: [] };
  }
  if (typeof raw !== 'object' || raw === null) return { constraints: [] };
  const obj = raw as { constraints?: unknown; colsUsed?: unknown };
  const constraints: ConstraintList[] = [];
  if (Array.isArray(obj.constraints)) {
    for (const c of obj.constraints as Array<Record<string, unknown>>) {
      if (typeof c !== 'object' || c === null || typeof c.name !== 'string') continue;
      const list: Constraint[] = [];
      if (Array.isArray(c.list)) {
        for (const item of c.list as Array<Record<string, unknown>>) {
          const op = Number(item?.op);
          if (!Number.isFinite(op) || item?.expr === undefined) continue;
          list.push({ op, expr: String(item.expr) });
        }
      }
      constraints.push({ name: c.name, affinity: typeof c.affinity === 'string' ? c.affinity : 'TEXT', list });
    }
  }
  const ctx: QueryContext = { constraints };
  if (Array.isArray(obj.colsUsed)) ctx.colsUsed = obj.colsUsed.filter((x): x is string => typeof x === 'string');
  return ctx;
}

/** Values a column is constrained to with `=`, or undefined when it is not. */
export function equalityValues(context: QueryContext, column: string): string[] | undefined {
  const c = context.constraints.find((x) => x.name === column);
  const values = c?.list.filter((x) => x.op === ConstraintOp.EQUALS).map((x) => x.expr);
  return values && values.length > 0 ? values : undefined;
}

function ok(rows: PluginResponse = []): ExtensionResponse {
  return response(status(0, 'OK'), rows);
}

function failed(message: string, code = 1): ExtensionResponse {
  return response(status(code, message));
}

/**
 * Most objects and arrays osqueryd's JSON may hold per call. Its messages are bounded in bytes by the Thrift
 * server, but `[{},{},…]` costs a JS object (and for a status line a row in one transaction) per 3 bytes: a
 * 3 MB status batch of 1 M entries blocked the event loop every tenant's servers share for 2.35 s. osqueryd
 * sends status batches of tens to hundreds of lines and query contexts of a few constraints; a distributed
 * result is one object per row. Over the bound the call fails (status code 1, osqueryd logs it) unparsed.
 */
export const JSON_BOUNDS = { statusBatch: 50_000, queryContext: 100_000, distributedResults: 1_000_000 } as const;

function checkShape(text: string, what: string, limit: number): void {
  if (countContainers(text, limit) > limit) {
    throw new Error(`${what}: more than ${limit} JSON objects and arrays, refused unparsed`);
  }
}

function parseStatusBatch(text: string | undefined): { entries: StatusLog[]; raw: string[] } {
  if (!text) return { entries: [], raw: [] };
  checkShape(text, 'status batch', JSON_BOUNDS.statusBatch + 1); // the batch's own array, then one object per line
  JSON.parse(text); // a bad batch is an error
  // Each element's own text, byte for byte (osquery-go's json.RawMessage), not a re-serialisation.
  // Older cores sent an object keyed by "" (duplicate keys) instead of an array: its values count the same.
  const texts = rawJsonElements(text);
  const entries: StatusLog[] = [];
  const raw: string[] = [];
  for (const itemText of texts) {
    const item: unknown = JSON.parse(itemText);
    if (typeof item !== 'object' || item === null || Array.isArray(item)) continue;
    const o = item as Record<string, unknown>;
    entries.push({
      s: Number(o.s ?? 0),
      f: String(o.f ?? ''),
      i: Number(o.i ?? 0),
      m: String(o.m ?? ''),
      h: String(o.h ?? ''),
      c: String(o.c ?? ''),
      u: Number(o.u ?? 0),
    });
    raw.push(itemText);
  }
  return { entries, raw };
}

function parseDistributedResults(text: string | undefined): DistributedResults {
  if (text) checkShape(text, 'distributed results', JSON_BOUNDS.distributedResults);
  const parsed: unknown = JSON.parse(text ?? '{}');
  const o = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const asRecord = (v: unknown): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  const queries: Record<string, Row[]> = {};
  for (const [id, rows] of Object.entries(asRecord(o.queries))) {
    // osqueryd sends "" for a query without rows: like a missing entry (osquery-go gives [] rows), not an empty array.
    if (rows === '') continue;
    queries[id] = Array.isArray(rows)
      ? rows.map((r) =>
          Object.fromEntries(Object.entries(asRecord(r)).map(([k, v]) => [k, v === null || v === undefined ? '' : String(v)])),
        )
      : [];
  }
  const statuses: Record<string, number> = {};
  for (const [id, st] of Object.entries(asRecord(o.statuses))) statuses[id] = Number(st) || 0;
  const messages: Record<string, string> = {};
  for (const [id, m] of Object.entries(asRecord(o.messages))) messages[id] = m === null || m === undefined ? '' : String(m);
  const stats: Record<string, DistributedQueryStats> = {};
  for (const [id, s] of Object.entries(asRecord(o.stats))) stats[id] = asRecord(s) as DistributedQueryStats;
  return { queries, statuses, messages, stats };
}

/**
 * Answer one `call(registry, item, request)` for a plugin, with osqueryd's
 * request and response shapes. A thrown error becomes status code 1 with its
 * message (osqueryd then fails the query or logs the plugin error).
 */
export async function dispatchPluginCall(plugin: Plugin, request: PluginRequest): Promise<ExtensionResponse> {
  try {
    switch (plugin.kind) {
      case 'table': {
        const action = request.action;
        if (action === 'columns') return ok(tableRoutes(plugin));
        if (action === 'generate') {
          const rows = await plugin.generate(parseQueryContext(request.context));
          return ok(rows);
        }
        return failed(`table ${plugin.name}: unsupported action ${JSON.stringify(action ?? '')}`);
      }
      case 'config': {
        if (request.action === 'genConfig') return ok([await plugin.genConfig()]);
        if (request.action === 'genPack') {
          if (!plugin.genPack) return failed(`config ${plugin.name}: genPack not supported`);
          const name = request.name ?? '';
          return ok([{ [name]: await plugin.genPack(name, request.value ?? '') }]);
        }
        return failed(`config ${plugin.name}: unsupported action ${JSON.stringify(request.action ?? '')}`);
      }
      case 'logger': {
        if (request.init !== undefined) {
          await plugin.init?.(request.init);
          return ok();
        }
        if (request.action === 'features') {
          return response(status(plugin.features ?? 1, 'OK'));
        }
        if (request.status !== undefined) {
          const { entries, raw } = parseStatusBatch(request.log);
          await plugin.logStatus(entries, raw);
          return ok();
        }
        if (request.string !== undefined) {
          await plugin.logString(request.string, 'string');
          return ok();
        }
        if (request.snapshot !== undefined) {
          await plugin.logString(request.snapshot, 'snapshot');
          return ok();
        }
        if (request.event !== undefined) {
          await plugin.logString(request.event, 'event');
          return ok();
        }
        // As launcher's logger: health logs are refused, not silently accepted.
        if (request.health !== undefined) return failed(`logger ${plugin.name}: health logs are unsupported`);
        return failed(`logger ${plugin.name}: unknown request`);
      }
      case 'distributed': {
        if (request.action === 'getQueries') {
          const q = await plugin.getQueries();
          const body: Record<string, unknown> = { queries: q.queries };
          if (q.discovery && Object.keys(q.discovery).length > 0) body.discovery = q.discovery;
          if (q.accelerate) body.accelerate = q.accelerate;
          return ok([{ results: JSON.stringify(body) }]);
        }
        if (request.action === 'writeResults') {
          await plugin.writeResults(parseDistributedResults(request.results));
          return ok();
        }
        return failed(`distributed ${plugin.name}: unsupported action ${JSON.stringify(request.action ?? '')}`);
      }
    }
  } catch (err) {
    return failed(errorMessage(err));
  }
}
