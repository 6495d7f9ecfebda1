/**
 * Which flags an osqueryd binary accepts, read from its own `--help`
 * (issue 13). An unknown flag makes osqueryd exit 1 at every launch ("ERROR:
 * unknown command line flag"), so a registration carrying one crash-loops;
 * checking at enroll and at start-up turns that into a clear refusal.
 *
 * Real osqueryd and the stand-in print one flag per line, `    --name VALUE
 * description`. The list is read once per binary (path + inode, size and
 * mtime: an upgraded binary is read again) and cached for the process. When
 * `--help` cannot be read (it fails, hangs, prints no flags), flags are
 * accepted with a warning rather than refusing everything; the instance's
 * own launch error then tells.
 *
 * Boolean flags may also be written `--no<name>` (gflags). Reserved flags
 * (flags.ts) are refused before this check, whatever --help says.
 */
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { LauncherError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log/logger.js';

export type FlagCatalog =
  | { readonly kind: 'known'; readonly path: string; readonly names: ReadonlySet<string> }
  | { readonly kind: 'unavailable'; readonly path: string; readonly reason: string };

/** Bounds on reading `--help`: a binary that hangs or floods is given up on. */
const HELP_TIMEOUT_MS = 10_000;
const HELP_MAX_BYTES = 4 * 1024 * 1024;
/** Fewer names than this is not a flag list (a wrapper script, an unrelated binary). */
const MIN_FLAGS = 5;

const HELP_LINE = /^\s+--([A-Za-z0-9_]+)(?=[\s=]|$)/gm;

/** Flag names listed in a `--help` text. */
export function parseHelpFlags(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(HELP_LINE)) names.add(m[1]!);
  return names;
}

function readHelp(path: string): Promise<FlagCatalog> {
  return new Promise((resolve) => {
    execFile(
      path,
      ['--help'],
      { timeout: HELP_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: HELP_MAX_BYTES, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const names = parseHelpFlags(`${stdout}\n${stderr}`);
        if (names.size >= MIN_FLAGS) return resolve({ kind: 'known', path, names });
        const why = err ? errorMessage(err) : `it listed ${names.size} flags`;
        resolve({ kind: 'unavailable', path, reason: `cannot read the flag list from ${path} --help: ${why}` });
      },
    );
  });
}

const cache = new Map<string, { identity: string; catalog: Promise<FlagCatalog> }>();

/** The flags `path` accepts (cached per binary identity). Never rejects. */
export function osquerydFlagCatalog(path: string): Promise<FlagCatalog> {
  let identity: string;
  try {
    const st = statSync(path);
    identity = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch (err) {
    return Promise.resolve({ kind: 'unavailable', path, reason: `cannot read the flag list from ${path}: ${errorMessage(err)}` });
  }
  const hit = cache.get(path);
  if (hit && hit.identity === identity) return hit.catalog;
  const catalog = readHelp(path);
  cache.set(path, { identity, catalog });
  return catalog;
}

/** `--name[=value]`, `-name`, `name=value` → `name`. */
export function flagName(flag: string): string {
  const body = flag.replace(/^--?/, '');
  const eq = body.indexOf('=');
  return eq === -1 ? body : body.slice(0, eq);
}

/** Why `flag` is not accepted by the binary of `catalog`, or undefined (also when the list is unavailable). */
export function unknownFlagProblem(catalog: FlagCatalog, flag: string): string | undefined {
  if (catalog.kind !== 'known') return undefined;
  const name = flagName(flag);
  if (catalog.names.has(name) || (name.startsWith('no') && catalog.names.has(name.slice(2)))) return undefined;
  return `unknown osqueryd flag --${name}: ${catalog.path} --help does not list it (osqueryd would exit at every launch)`;
}

/**
 * Throws E_INVALID_ARGUMENT naming the first flag `osquerydPath` does not
 * accept; with no readable flag list, warns once per call and accepts.
 */
export async function checkKnownFlags(
  osquerydPath: string,
  flags: readonly string[],
  where: string,
  logger: Logger = silentLogger(),
): Promise<void> {
  if (flags.length === 0) return;
  const catalog = await osquerydFlagCatalog(osquerydPath);
  if (catalog.kind === 'unavailable') {
    logger.warn(
      { osqueryd: osquerydPath, reason: catalog.reason, flags },
      'cannot check osquery flags against osqueryd --help; accepting them',
    );
    return;
  }
  for (const flag of flags) {
    const problem = unknownFlagProblem(catalog, flag);
    if (problem) throw new LauncherError('E_INVALID_ARGUMENT', `${where}: ${problem}`);
  }
}
