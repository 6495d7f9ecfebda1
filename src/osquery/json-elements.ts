/**
 * The source text of each top-level value of a JSON array (or of an object's
 * values: older osquery cores sent status batches as `{"":{…},"":{…}}`),
 * byte for byte as written, the way Go's `[]json.RawMessage` keeps them.
 * osquery-go hands launcher each status line this way; re-serialising would
 * reorder keys, change number spellings and escapes (issue 15).
 *
 * The text must already be known to be valid JSON (the caller JSON.parse()s
 * it first); this only finds the boundaries.
 */

const WS = new Set([' ', '\t', '\n', '\r']);

/** End index (exclusive) of the string starting at `i` (a `"`). */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text[j];
    if (c === '\\') j++;
    else if (c === '"') return j + 1;
  }
  return text.length;
}

/** End index (exclusive) of the value starting at `i`. */
function valueEnd(text: string, i: number): number {
  if (text[i] === '"') return stringEnd(text, i);
  if (text[i] !== '{' && text[i] !== '[') {
    let j = i;
    while (j < text.length && !WS.has(text[j]!) && text[j] !== ',' && text[j] !== ']' && text[j] !== '}') j++;
    return j;
  }
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text[j];
    if (c === '"') {
      j = stringEnd(text, j) - 1;
    } else if (c === '{' || c === '[') {
      depth++;
    } else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return j + 1;
    }
  }
  return text.length;
}

function skipWs(text: string, i: number): number {
  while (i < text.length && WS.has(text[i]!)) i++;
  return i;
}

/** Raw text of each element of a top-level array, or each value of a top-level object; [] for anything else. */
export function rawJsonElements(text: string): string[] {
  let i = skipWs(text, 0);
  const open = text[i];
  if (open !== '[' && open !== '{') return [];
  const close = open === '[' ? ']' : '}';
  const out: string[] = [];
  i = skipWs(text, i + 1);
  while (i < text.length && text[i] !== close) {
    if (open === '{') {
      i = skipWs(text, stringEnd(text, i)); // the key
      i = skipWs(text, i + 1); // the colon
    }
    const end = valueEnd(text, i);
    out.push(text.slice(i, end));
    i = skipWs(text, end);
    if (text[i] === ',') i = skipWs(text, i + 1);
  }
  return out;
}

/**
 * Objects and arrays in a JSON text (those inside strings do not count), counted up to `limit + 1`: a
 * cheap look at a payload's shape before `JSON.parse` builds it. A few bytes of JSON (`{},`) become a
 * whole object once parsed, so a peer's message size alone does not bound the work its JSON costs.
 */
export function countContainers(text: string, limit: number): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: skip to its closing quote
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++n > limit) return n;
    }
  }
  return n;
}
