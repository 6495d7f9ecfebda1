import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LauncherError } from '../errors.js';

/** Where the official packages install osqueryd, per platform; searched after PATH. */
export const USUAL_OSQUERYD_PATHS: Readonly<Record<string, readonly string[]>> = {
  linux: ['/opt/osquery/bin/osqueryd', '/usr/bin/osqueryd', '/usr/local/bin/osqueryd'],
  darwin: ['/opt/osquery/lib/osquery.app/Contents/MacOS/osqueryd', '/usr/local/bin/osqueryd', '/var/osquery/osqueryd'],
};

/** How the stand-in is chosen; printed in `--help` and in the not-found error. */
export const STAND_IN_RULE =
  'The stand-in bin/osqueryd-sim is used only by the demo (`npm start`), and only when no osqueryd is found ' +
  '($LAUNCHER_OSQUERYD_PATH, then the search list). `launcher run` never picks it: set osqueryd_path (or ' +
  '$LAUNCHER_OSQUERYD_PATH) to bin/osqueryd-sim to run on it.';

/** The paths `osqueryd_path: auto` tries, in order, without duplicates: each $PATH directory, then this platform's install paths. */
export function osquerydSearchList(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string[] {
  const fromPath = (env.PATH ?? '')
    .split(delimiter)
    .filter((d) => d !== '')
    .map((d) => join(resolve(d), 'osqueryd'));
  return [...new Set([...fromPath, ...(USUAL_OSQUERYD_PATHS[platform] ?? USUAL_OSQUERYD_PATHS.linux!)])];
}

/** The project's stand-in (bin/osqueryd-sim), for the demo and tests. */
export function standInPath(): string {
  // dist/src/app → repository root, or src/app when run from source.
  const here = dirname(fileURLToPath(import.meta.url));
  const root = here.includes('/dist/') ? resolve(here, '../../..') : resolve(here, '../..');
  return join(root, 'bin', 'osqueryd-sim');
}

function isExecutable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface LocatedOsqueryd {
  path: string;
  /** 'configured' | 'path' | 'usual' | 'stand-in' */
  source: 'configured' | 'path' | 'usual' | 'stand-in';
  searched: string[];
}

/**
 * Find osqueryd: the configured path, else PATH, else the usual install
 * paths; with `allowStandIn` (the demo) fall back to bin/osqueryd-sim. A
 * missing binary is an error that lists every path searched.
 */
export function locateOsqueryd(configured: string, options: { allowStandIn?: boolean; env?: NodeJS.ProcessEnv } = {}): LocatedOsqueryd {
  const env = options.env ?? process.env;
  if (configured !== 'auto') {
    if (isExecutable(configured)) return { path: configured, source: 'configured', searched: [configured] };
    throw new LauncherError('E_OSQUERYD_NOT_FOUND', `osqueryd_path ${configured} is not an executable file`);
  }
  const searched: string[] = [];
  const pathDirs = new Set(
    (env.PATH ?? '')
      .split(delimiter)
      .filter((d) => d !== '')
      .map((d) => join(resolve(d), 'osqueryd')),
  );
  for (const p of osquerydSearchList(env)) {
    searched.push(p);
    if (isExecutable(p)) return { path: p, source: pathDirs.has(p) ? 'path' : 'usual', searched };
  }
  if (options.allowStandIn) {
    const sim = standInPath();
    searched.push(sim);
    if (isExecutable(sim)) return { path: sim, source: 'stand-in', searched };
  }
  throw new LauncherError(
    'E_OSQUERYD_NOT_FOUND',
    `osqueryd not found; searched:\n  ${searched.join('\n  ')}\nInstall osquery or set osqueryd_path in the config. ${STAND_IN_RULE}`,
  );
}
