/**
 * osqueryd versions as the update repository names them (issue 17): dotted
 * numbers with an optional `-suffix`, e.g. `5.13.1` or `5.14.0-rc1`. A
 * version becomes a directory name (`<root>/osqueryd/<version>/`), so the
 * pattern admits no `/`, no `..` and nothing a shell or a path would treat
 * specially; every value from the repository, the config or the control API
 * is checked here before it is used.
 */
import { LauncherError } from '../errors.js';

export const VERSION_PATTERN = /^\d{1,6}(\.\d{1,6}){1,3}(-[0-9A-Za-z][0-9A-Za-z.]{0,31})?$/;

/** The version rule as a problem string (undefined when fine), for schema validators. */
export function versionProblem(value: string): string | undefined {
  if (VERSION_PATTERN.test(value) && !value.includes('..')) return undefined;
  return `must be a version like 5.13.1 or 5.13.1-rc1 (${VERSION_PATTERN.source}), got ${JSON.stringify(value.slice(0, 80))}`;
}

/** Throws E_INVALID_ARGUMENT naming `field` unless `value` is a version. */
export function parseVersion(value: unknown, field = 'version'): string {
  if (typeof value === 'string') {
    const p = versionProblem(value);
    if (p === undefined) return value;
    throw new LauncherError('E_INVALID_ARGUMENT', `${field} ${p}`);
  }
  throw new LauncherError('E_INVALID_ARGUMENT', `${field} must be a string, got ${typeof value}`);
}

/**
 * Order of two versions: numbers part by part (a missing part is 0), then a
 * version without a suffix after one with it (5.13.0-rc1 < 5.13.0), then the
 * suffixes as strings. Negative when a < b.
 */
export function compareVersions(a: string, b: string): number {
  const [an, as] = split(a);
  const [bn, bs] = split(b);
  for (let i = 0; i < Math.max(an.length, bn.length); i++) {
    const d = (an[i] ?? 0) - (bn[i] ?? 0);
    if (d !== 0) return d;
  }
  if (as === bs) return 0;
  if (as === '') return 1;
  if (bs === '') return -1;
  return as < bs ? -1 : 1;
}

function split(v: string): [number[], string] {
  const dash = v.indexOf('-');
  const core = dash < 0 ? v : v.slice(0, dash);
  return [core.split('.').map(Number), dash < 0 ? '' : v.slice(dash + 1)];
}
