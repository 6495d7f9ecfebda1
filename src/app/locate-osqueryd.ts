import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LauncherError } from '../errors.js';

/** Where osqueryd is installed by the official packages, after PATH. */
export const USUAL_OSQUERYD_PATHS = [
  '/opt/osquery/bin/osqueryd',
  '/usr/bin/osqueryd',
  '/usr/local/bin/osqueryd',
  '/opt/osquery/lib/osquery.app/Contents/MacOS/osqueryd',
  '/var/osquery/osqueryd',
];

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
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const p = join(dir, 'osqueryd');
    searched.push(p);
    if (isExecutable(p)) return { path: p, source: 'path', searched };
  }
  for (const p of USUAL_OSQUERYD_PATHS) {
    searched.push(p);
    if (isExecutable(p)) return { path: p, source: 'usual', searched };
  }
  if (options.allowStandIn) {
    const sim = standInPath();
    searched.push(sim);
    if (isExecutable(sim)) return { path: sim, source: 'stand-in', searched };
  }
  throw new LauncherError('E_OSQUERYD_NOT_FOUND', `osqueryd not found; searched:\n  ${searched.join('\n  ')}\nInstall osquery or set osqueryd_path in the config.`);
}
