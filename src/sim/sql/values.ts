/**
 * Value conversion at the SQLite boundary, as osqueryd does it:
 * - into a table: strings typed by the column's declared type
 *   (dynamic_table_row: empty/unparsable numbers become NULL, integers parse
 *   with C base auto-detection, so `0x1f` is hex and a leading 0 is octal);
 * - out of a query: every value a string (docs/protocol/osquery-extensions.md#value-rendering).
 */
export type SqlValue = string | number | bigint | null;

const INT_RE = /^\s*([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/;
const REAL_RE = /^\s*[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|inf|infinity)$/i;

function parseCInteger(s: string): bigint | null {
  const m = INT_RE.exec(s);
  if (!m) return null;
  const body = m[2]!;
  let n: bigint;
  if (/^0[xX]/.test(body)) n = BigInt(body);
  else if (body.length > 1 && body.startsWith('0')) n = BigInt(`0o${body.slice(1)}`);
  else n = BigInt(body);
  if (m[1] === '-') n = -n;
  // C casts to sqlite3_int64; UNSIGNED BIGINT values above INT64_MAX wrap.
  return BigInt.asIntN(64, n);
}

/** A generated value (string from an extension, or a native value from a core table) typed for SQLite. */
export function toSqlValue(raw: unknown, type: string): SqlValue {
  if (raw === undefined || raw === null) return null;
  switch (type) {
    case 'INTEGER':
    case 'BIGINT':
    case 'UNSIGNED BIGINT':
      if (typeof raw === 'bigint') return BigInt.asIntN(64, raw);
      if (typeof raw === 'number') return Number.isInteger(raw) ? BigInt(raw) : BigInt(Math.trunc(raw));
      return parseCInteger(String(raw));
    case 'DOUBLE': {
      if (typeof raw === 'number') return Number.isNaN(raw) ? null : raw;
      if (typeof raw === 'bigint') return Number(raw);
      const s = String(raw);
      if (!REAL_RE.test(s)) return null;
      const n = /inf/i.test(s) ? (s.trim().startsWith('-') ? -Infinity : Infinity) : Number(s);
      return Number.isNaN(n) ? null : n;
    }
    default:
      return typeof raw === 'string' ? raw : String(raw);
  }
}

/**
 * C++ `std::setprecision(15)` (%.15g) with `.0` appended when there is no
 * `.`: `1.0`, `3.14159265358979`, `1e+20.0`.
 */
export function formatReal(x: number): string {
  let s: string;
  if (Number.isNaN(x)) s = 'nan';
  else if (!Number.isFinite(x)) s = x > 0 ? 'inf' : '-inf';
  else if (x === 0) s = Object.is(x, -0) ? '-0' : '0';
  else {
    const [mantissa, expText] = x.toExponential(14).split('e') as [string, string];
    const exp = Number(expText);
    if (exp < -4 || exp >= 15) {
      s = `${stripZeros(mantissa)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
    } else {
      s = stripZeros(x.toFixed(14 - exp));
    }
  }
  return s.includes('.') ? s : `${s}.0`;
}

function stripZeros(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** One SQLite result value as osqueryd sends it (statements run with safeIntegers, so integers are bigint). */
export function renderValue(v: unknown, nullvalue: string): string {
  if (v === null || v === undefined) return nullvalue;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return formatReal(v);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return String(v);
}
