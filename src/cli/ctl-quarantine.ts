/**
 * `launcher ctl quarantine list|release` output (issue 16), and the
 * quarantine line of `ctl get`.
 */
import type { QuarantineState } from '../control/target.js';
import { table, time } from './ctl-format.js';

const short = (s: string, n: number) => {
  const one = s.replace(/\s+/g, ' ');
  return one.length > n ? `${one.slice(0, n)}…` : one;
};

/** A scheduled query's name, else `distributed <hash prefix>`. */
function what(q: QuarantineState): string {
  return q.kind === 'scheduled' ? `scheduled ${q.name}` : `distributed ${q.sql_hash.slice(0, 12)}`;
}

export function quarantineTable(entries: QuarantineState[]): string {
  if (entries.length === 0) return 'no quarantined queries\n';
  return table(
    ['ID', 'KIND', 'RELEASE WITH', 'SQL', 'INCIDENTS', 'SINCE', 'EXPIRES', 'REASON'],
    entries.map((q) => [
      q.registration_id,
      q.kind,
      q.release_handle,
      short(q.sql, 60),
      String(q.incidents),
      time(q.quarantined_at),
      time(q.expires_at),
      short(q.reason, 120),
    ]),
  );
}

export function releasedText(id: string, released: QuarantineState[]): string {
  const restarted = released.some((q) => q.kind === 'scheduled') ? ` (its osqueryd restarts to load the config with it)` : '';
  return `${released.map((q) => `released ${what(q)} on ${id}`).join('\n')}${restarted}\n`;
}

/** `none`, or `2 queries: scheduled boom, distributed 4f2a…`. */
export function quarantineLine(entries: QuarantineState[]): string {
  if (entries.length === 0) return 'none';
  return `${entries.length} ${entries.length === 1 ? 'query' : 'queries'}: ${entries.map(what).join(', ')}`;
}
