/**
 * The CLI's output conventions, shared by every subcommand:
 * - `--json` output: keys snake_case; times are ISO-8601 strings (keys `time`,
 *   `since`, `*_at`, `*_time`); durations carry their unit (`*_ms`, `*_seconds`).
 *   `wireJson` converts the API objects to that style (README "CLI output").
 * - errors: one line `launcher <cmd>: message` on stderr, or under `--json`
 *   `{"error":{"code":"E_…","message":"…"}}` on stderr.
 * - exit codes: 0 ok (also `--help`, `--version`), 2 usage errors, others per
 *   command (`launcher ctl --help`).
 */
import { errorMessage } from '../errors.js';

export const USAGE_EXIT = 2;

const TIME_KEY = /(^|_)(at|time|since)$/;

const snake = (key: string): string =>
  key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toLowerCase();

/** API objects in the CLI's JSON style: snake_case keys, epoch-ms times under time keys as ISO strings. */
export function wireJson(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((v) => wireJson(v, key));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [snake(k), wireJson(v, snake(k))]));
  }
  if (typeof value === 'number' && TIME_KEY.test(key) && Number.isFinite(value)) return new Date(value).toISOString();
  return value;
}

/** The error's stable code: a LauncherError's code, else E_USAGE for usage errors, else E_ERROR. */
export function errorCode(err: unknown, fallback = 'E_ERROR'): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E_[A-Z_]+$/.test(code) ? code : fallback;
}

/** The text to write on stderr for a failed command. */
export function errorOutput(command: string, err: unknown, json: boolean, fallbackCode?: string): string {
  const message = errorMessage(err);
  if (json) return `${JSON.stringify({ error: { code: errorCode(err, fallbackCode), message } })}\n`;
  return `${command}: ${message}\n`;
}

/** Whether the command line asks for JSON (`--json` before a `--` separator). */
export function argvWantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}
