/**
 * Build the `context` osqueryd sends with a table `generate` call
 * (docs/protocol/osquery-extensions.md#context-json): every column in `constraints` (lists possibly empty), `colsUsed`, and
 * `colsUsedBitset`. osqueryd gets constraints from SQLite's planner; the
 * stand-in reads them from the statement, conservatively: only
 * `col <op> literal`, `literal <op> col` and `col IN (literals)` terms that
 * are joined by AND in a WHERE/ON clause of the query scope that scans the
 * table (never a correlated reference from a subquery, never under NOT, CASE
 * or a function call), and none at all when the statement has an OR, names
 * the table twice, or a column is ambiguous. Missing a
 * constraint is always safe: SQLite re-applies every filter to the rows.
 */
import { isKeyword, isOp, type Token } from './tokenize.js';
import { ColumnOptions, ConstraintOp as Op } from '../../osquery/plugins.js';
import type { TableSpec } from './schema.js';

export interface ConstraintItem {
  op: number;
  expr: string;
}

export interface ConstraintEntry {
  name: string;
  list: ConstraintItem[];
  affinity: string;
}

export interface TableContext {
  constraints: ConstraintEntry[];
  colsUsed: string[];
  colsUsedBitset: bigint;
}

const COMPARISON: Record<string, number> = {
  '=': Op.EQUALS,
  '==': Op.EQUALS,
  '>': Op.GREATER_THAN,
  '<=': Op.LESS_THAN_OR_EQUALS,
  '<': Op.LESS_THAN,
  '>=': Op.GREATER_THAN_OR_EQUALS,
};
const WORD_OPS: Record<string, number> = { like: Op.LIKE, glob: Op.GLOB, match: Op.MATCH, regexp: Op.REGEXP };
/** `5 < col` is `col > 5`. */
const MIRROR: Record<number, number> = {
  [Op.GREATER_THAN]: Op.LESS_THAN,
  [Op.LESS_THAN]: Op.GREATER_THAN,
  [Op.LESS_THAN_OR_EQUALS]: Op.GREATER_THAN_OR_EQUALS,
  [Op.GREATER_THAN_OR_EQUALS]: Op.LESS_THAN_OR_EQUALS,
};
const RANGE_OPS = new Set<number>([Op.GREATER_THAN, Op.LESS_THAN, Op.LESS_THAN_OR_EQUALS, Op.GREATER_THAN_OR_EQUALS]);

const CLAUSES = new Set([
  'select',
  'from',
  'where',
  'group',
  'having',
  'order',
  'limit',
  'on',
  'using',
  'union',
  'except',
  'intersect',
  'values',
  'set',
  'window',
  'returning',
  'join',
]);
const TERM_END = new Set([
  'and',
  'group',
  'order',
  'limit',
  'having',
  'window',
  'union',
  'except',
  'intersect',
  'join',
  'left',
  'right',
  'full',
  'inner',
  'cross',
  'natural',
  'where',
  'returning',
]);
const NOT_ALIAS = new Set([...TERM_END, 'on', 'using', 'outer', 'indexed', 'not', 'as', 'select', 'from']);

interface Frame {
  clause: string;
  /** Terms here do not filter the scan: inside a function call, a CASE or a NOT (…), at any depth. */
  blocked: boolean;
  caseDepth: number;
  /** Query scope: each subquery is its own; a term only constrains a table scanned in its scope. */
  scope: number;
}

/** Per-token clause context: which clause a token sits in, and whether its terms are constraints. */
function frames(tokens: Token[]): Frame[] {
  const stack: Frame[] = [{ clause: '', blocked: false, caseDepth: 0, scope: 0 }];
  const out: Frame[] = [];
  let scopes = 0;
  tokens.forEach((t, i) => {
    let top = stack[stack.length - 1]!;
    if (isOp(t, '(')) {
      out.push(top);
      const prev = tokens[i - 1];
      if (isKeyword(tokens[i + 1], 'select', 'with', 'values')) {
        // A subquery: its own WHERE filters its own scans.
        stack.push({ clause: '', blocked: false, caseDepth: 0, scope: ++scopes });
        return;
      }
      // A grouping paren keeps the clause; after a function name or NOT it blocks.
      const grouping =
        prev === undefined || isOp(prev, '(', ',') || isKeyword(prev, 'where', 'on', 'and', 'in', 'from', 'join', 'using', 'as');
      stack.push({ clause: top.clause, blocked: top.blocked || top.caseDepth > 0 || !grouping, caseDepth: 0, scope: top.scope });
      return;
    }
    if (isOp(t, ')')) {
      if (stack.length > 1) stack.pop();
      out.push(stack[stack.length - 1]!);
      return;
    }
    if (t.kind === 'ident' && !t.quoted) {
      if (CLAUSES.has(t.lower)) {
        top = { ...top, clause: t.lower === 'join' ? 'from' : t.lower };
        stack[stack.length - 1] = top;
      } else if (t.lower === 'case') {
        top = { ...top, caseDepth: top.caseDepth + 1 };
        stack[stack.length - 1] = top;
      } else if (t.lower === 'end' && top.caseDepth > 0) {
        top = { ...top, caseDepth: top.caseDepth - 1 };
        stack[stack.length - 1] = top;
      }
    }
    out.push(top);
  });
  return out;
}

interface TableRef {
  name: string;
  alias?: string;
  scope: number;
}

/** Names in FROM/JOIN position, with their aliases. */
function fromRefs(tokens: Token[], ctx: Frame[]): TableRef[] {
  const refs: TableRef[] = [];
  tokens.forEach((t, i) => {
    if (t.kind !== 'ident' || ctx[i]!.clause !== 'from') return;
    const prev = tokens[i - 1];
    if (!(isKeyword(prev, 'from', 'join') || isOp(prev, ','))) return;
    if (isOp(tokens[i + 1], '(', '.')) return;
    let alias: Token | undefined;
    if (isKeyword(tokens[i + 1], 'as')) alias = tokens[i + 2];
    else if (tokens[i + 1]?.kind === 'ident' && (tokens[i + 1]!.quoted || !NOT_ALIAS.has(tokens[i + 1]!.lower))) alias = tokens[i + 1];
    refs.push({ name: t.lower, alias: alias?.kind === 'ident' ? alias.lower : undefined, scope: ctx[i]!.scope });
  });
  return refs;
}

function literal(tokens: Token[], i: number): { expr: string; next: number } | undefined {
  const t = tokens[i];
  if (!t) return undefined;
  if (t.kind === 'string') return { expr: t.text, next: i + 1 };
  if (t.kind === 'number') return { expr: t.text, next: i + 1 };
  if (isOp(t, '-', '+') && tokens[i + 1]?.kind === 'number')
    return { expr: (t.text === '-' ? '-' : '') + tokens[i + 1]!.text, next: i + 2 };
  return undefined;
}

function colRef(tokens: Token[], i: number): { qualifier?: string; column: string; next: number } | undefined {
  const t = tokens[i];
  if (t?.kind !== 'ident') return undefined;
  if (isOp(tokens[i + 1], '.')) {
    const c = tokens[i + 2];
    if (c?.kind !== 'ident') return undefined;
    return { qualifier: t.lower, column: c.lower, next: i + 3 };
  }
  if (isOp(tokens[i + 1], '(')) return undefined;
  return { column: t.lower, next: i + 1 };
}

function operator(t: Token | undefined): number | undefined {
  if (!t) return undefined;
  if (t.kind === 'op') return COMPARISON[t.text];
  if (t.kind === 'ident' && !t.quoted) return WORD_OPS[t.lower];
  return undefined;
}

function termEnds(tokens: Token[], j: number): boolean {
  const t = tokens[j];
  return t === undefined || t.kind === 'semi' || isOp(t, ')') || (t.kind === 'ident' && !t.quoted && TERM_END.has(t.lower));
}

/**
 * The generate context for `table` in one statement. `tokens` undefined (the
 * table appears in several statements) gives empty constraint lists.
 * `others` are the other known tables the statement names.
 */
export function buildContext(
  tokens: Token[] | undefined,
  table: TableSpec,
  others: readonly TableSpec[],
  defaultIndex: boolean,
): TableContext {
  const lists = new Map<string, ConstraintItem[]>(table.columns.map((c) => [c.name.toLowerCase(), []]));
  const byLower = new Map(table.columns.map((c) => [c.name.toLowerCase(), c]));
  const used = new Set<string>();
  if (!tokens) {
    for (const c of table.columns) used.add(c.name.toLowerCase());
  } else {
    const ctx = frames(tokens);
    const refs = fromRefs(tokens, ctx);
    const mine = refs.filter((r) => r.name === table.name.toLowerCase());
    const names = new Set([table.name.toLowerCase(), ...mine.flatMap((r) => (r.alias ? [r.alias] : []))]);
    // An unqualified column resolves among the tables of the table's own scope.
    const scope = mine[0]?.scope;
    const byName = new Map(others.map((o) => [o.name.toLowerCase(), o]));
    const scopeRefs = refs.filter((r) => r.scope === scope && r.name !== table.name.toLowerCase());
    const otherColumns = new Set(scopeRefs.flatMap((r) => byName.get(r.name)?.columns.map((c) => c.name.toLowerCase()) ?? []));
    const unknownRef = scopeRefs.some((r) => !byName.has(r.name));
    const resolve = (ref: { qualifier?: string; column: string }): string | undefined => {
      if (!byLower.has(ref.column)) return undefined;
      if (ref.qualifier !== undefined) return names.has(ref.qualifier) ? ref.column : undefined;
      return otherColumns.has(ref.column) || unknownRef ? undefined : ref.column;
    };
    collectUsed(tokens, names, byLower, used);
    const hasOr = tokens.some((t) => isKeyword(t, 'or'));
    if (mine.length === 1 && !hasOr) {
      tokens.forEach((_, i) => {
        const f = ctx[i]!;
        if ((f.clause !== 'where' && f.clause !== 'on') || f.blocked || f.caseDepth > 0 || f.scope !== mine[0]!.scope) return;
        const prev = tokens[i - 1];
        if (!(isKeyword(prev, 'where', 'on', 'and') || isOp(prev, '('))) return;
        for (const term of termsAt(tokens, i)) {
          const col = resolve(term);
          if (col) lists.get(col)!.push({ op: term.op, expr: term.expr });
        }
      });
    }
  }
  const constraints: ConstraintEntry[] = table.columns.map((c) => {
    const indexed =
      (c.options & (ColumnOptions.INDEX | ColumnOptions.REQUIRED | ColumnOptions.ADDITIONAL)) !== 0 || (c.options === 0 && defaultIndex);
    const list = indexed ? lists.get(c.name.toLowerCase())!.filter((x) => !(c.type === 'TEXT' && RANGE_OPS.has(x.op))) : [];
    return { name: c.name, list, affinity: c.type };
  });
  const colsUsed = table.columns.filter((c) => used.has(c.name.toLowerCase())).map((c) => c.name);
  let bitset = 0n;
  table.columns.forEach((c, i) => {
    if (used.has(c.name.toLowerCase())) bitset |= 1n << BigInt(i);
  });
  return { constraints, colsUsed, colsUsedBitset: bitset };
}

type Term = { qualifier?: string; column: string; op: number; expr: string };

function termsAt(tokens: Token[], i: number): Term[] {
  const ref = colRef(tokens, i);
  if (ref) {
    const op = operator(tokens[ref.next]);
    if (op !== undefined) {
      const lit = literal(tokens, ref.next + 1);
      if (lit && termEnds(tokens, lit.next)) return [{ ...ref, op, expr: lit.expr }];
      return [];
    }
    if (isKeyword(tokens[ref.next], 'in') && isOp(tokens[ref.next + 1], '(')) {
      const out: Term[] = [];
      let j = ref.next + 2;
      for (;;) {
        const lit = literal(tokens, j);
        if (!lit) return [];
        out.push({ ...ref, op: Op.EQUALS, expr: lit.expr });
        if (isOp(tokens[lit.next], ',')) j = lit.next + 1;
        else if (isOp(tokens[lit.next], ')') && termEnds(tokens, lit.next + 1)) return out;
        else return [];
      }
    }
    return [];
  }
  const lit = literal(tokens, i);
  if (!lit) return [];
  const op = operator(tokens[lit.next]);
  if (op === undefined || !(op in MIRROR || op === Op.EQUALS)) return [];
  const right = colRef(tokens, lit.next + 1);
  if (!right || !termEnds(tokens, right.next)) return [];
  return [{ ...right, op: MIRROR[op] ?? op, expr: lit.expr }];
}

/** Columns the statement names (or all of them for `*` / `t.*`). */
function collectUsed(tokens: Token[], names: Set<string>, byLower: Map<string, unknown>, used: Set<string>): void {
  tokens.forEach((t, i) => {
    if (isOp(t, '*')) {
      const prev = tokens[i - 1];
      const star =
        isKeyword(prev, 'select', 'distinct', 'all') || isOp(prev, ',') || (isOp(prev, '.') && names.has(tokens[i - 2]?.lower ?? ''));
      if (star) for (const c of byLower.keys()) used.add(c);
      return;
    }
    if (t.kind !== 'ident' || !byLower.has(t.lower)) return;
    if (isOp(tokens[i - 1], '.')) {
      if (names.has(tokens[i - 2]?.lower ?? '')) used.add(t.lower);
    } else if (!isOp(tokens[i + 1], '(', '.')) {
      used.add(t.lower);
    }
  });
}

/** The JSON text osqueryd sends; colsUsedBitset is a uint64 written exactly. */
export function contextJson(ctx: TableContext): string {
  const body = JSON.stringify({ constraints: ctx.constraints, colsUsed: ctx.colsUsed });
  return `${body.slice(0, -1)},"colsUsedBitset":${ctx.colsUsedBitset.toString()}}`;
}
