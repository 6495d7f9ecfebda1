/**
 * A lenient SQLite tokenizer: enough to split `;`-separated statements and
 * to see which tables and columns a statement names and which simple
 * constraints its WHERE clause holds. Never throws: malformed input gives
 * tokens up to the point SQLite itself will then report.
 */
export type TokenKind = 'ident' | 'string' | 'number' | 'blob' | 'param' | 'op' | 'semi';

export interface Token {
  kind: TokenKind;
  /** Identifiers: unquoted name; strings: unescaped text; others: source text. */
  text: string;
  /** Lowercased `text` for bare and quoted identifiers (SQLite names are case-insensitive). */
  lower: string;
  quoted: boolean;
  start: number;
  end: number;
}

const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const IDENT_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
const OPS3 = ['->>'];
const OPS2 = ['||', '<=', '>=', '==', '!=', '<>', '<<', '>>', '->'];

export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  const n = sql.length;
  let i = 0;
  const push = (kind: TokenKind, text: string, start: number, quoted = false) =>
    out.push({ kind, text, lower: kind === 'ident' ? text.toLowerCase() : text, quoted, start, end: i });
  while (i < n) {
    const c = sql[i]!;
    const start = i;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      const close = sql.indexOf('*/', i + 2);
      i = close < 0 ? n : close + 2;
    } else if (c === "'" || c === '"' || c === '`') {
      const text = readQuoted(sql, i, c);
      i = text.end;
      push(c === "'" ? 'string' : 'ident', text.value, start, c !== "'");
    } else if (c === '[') {
      const close = sql.indexOf(']', i + 1);
      i = close < 0 ? n : close + 1;
      push('ident', sql.slice(start + 1, close < 0 ? n : close), start, true);
    } else if ((c === 'x' || c === 'X') && sql[i + 1] === "'") {
      const text = readQuoted(sql, i + 1, "'");
      i = text.end;
      push('blob', sql.slice(start, i), start);
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      if (c === '0' && (sql[i + 1] === 'x' || sql[i + 1] === 'X')) {
        i += 2;
        while (i < n && /[0-9A-Fa-f]/.test(sql[i]!)) i++;
      } else {
        while (i < n && /[0-9_]/.test(sql[i]!)) i++;
        if (sql[i] === '.') {
          i++;
          while (i < n && /[0-9_]/.test(sql[i]!)) i++;
        }
        if ((sql[i] === 'e' || sql[i] === 'E') && /[-+0-9]/.test(sql[i + 1] ?? '')) {
          i += 2;
          while (i < n && /[0-9]/.test(sql[i]!)) i++;
        }
      }
      push('number', sql.slice(start, i), start);
    } else if (IDENT_START.test(c)) {
      while (i < n && IDENT_PART.test(sql[i]!)) i++;
      push('ident', sql.slice(start, i), start);
    } else if (c === '?' || c === ':' || c === '@' || c === '$') {
      i++;
      while (i < n && IDENT_PART.test(sql[i]!)) i++;
      push('param', sql.slice(start, i), start);
    } else if (c === ';') {
      i++;
      push('semi', ';', start);
    } else {
      const three = sql.slice(i, i + 3);
      const two = sql.slice(i, i + 2);
      const op = OPS3.includes(three) ? three : OPS2.includes(two) ? two : c;
      i += op.length;
      push('op', op, start);
    }
  }
  return out;
}

function readQuoted(sql: string, at: number, q: string): { value: string; end: number } {
  let i = at + 1;
  let value = '';
  for (;;) {
    const close = sql.indexOf(q, i);
    if (close < 0) return { value: value + sql.slice(i), end: sql.length };
    value += sql.slice(i, close);
    if (sql[close + 1] === q) {
      value += q;
      i = close + 2;
    } else {
      return { value, end: close + 1 };
    }
  }
}

export interface Statement {
  sql: string;
  tokens: Token[];
}

/**
 * Split into statements at `;` (outside strings, comments and a trigger's
 * BEGIN…END body); empty statements are dropped.
 */
export function splitStatements(sql: string): Statement[] {
  const tokens = tokenize(sql);
  const out: Statement[] = [];
  let current: Token[] = [];
  let inTrigger = false;
  let beginDepth = 0;
  const flush = (end: number) => {
    if (current.length > 0) out.push({ sql: sql.slice(current[0]!.start, end), tokens: current });
    current = [];
    inTrigger = false;
    beginDepth = 0;
  };
  for (const t of tokens) {
    if (t.kind === 'semi') {
      if (beginDepth > 0) {
        current.push(t);
        continue;
      }
      flush(t.start);
      continue;
    }
    if (t.kind === 'ident' && !t.quoted) {
      if (t.lower === 'trigger' && current[0]?.lower === 'create') inTrigger = true;
      else if (inTrigger && (t.lower === 'begin' || t.lower === 'case')) beginDepth++;
      else if (inTrigger && t.lower === 'end' && beginDepth > 0) beginDepth--;
    }
    current.push(t);
  }
  flush(sql.length);
  return out;
}

export function isKeyword(t: Token | undefined, ...words: string[]): boolean {
  return t !== undefined && t.kind === 'ident' && !t.quoted && words.includes(t.lower);
}

export function isOp(t: Token | undefined, ...ops: string[]): boolean {
  return t !== undefined && t.kind === 'op' && ops.includes(t.text);
}
