/**
 * Where the repository's programs are, whether this module runs from source
 * (vitest) or from dist/ (`node dist/bench/...`): walk up to the directory
 * holding package.json and bin/launcher.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepo(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'launcher'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`cannot find the repository root above ${fileURLToPath(import.meta.url)}`);
}

export const REPO = findRepo();
export const LAUNCHER_BIN = join(REPO, 'bin/launcher');
export const OSQUERYD_SIM = join(REPO, 'bin/osqueryd-sim');
/** The stand-in with its output sent to /dev/null (see the script): it outlives a SIGKILLed supervisor. */
export const OSQUERYD_SIM_QUIET = join(REPO, 'bench/reliability/osqueryd-sim-quiet.sh');

/** The compiled programs the scenarios spawn exist (`npx tsc -p .` ran). */
export function assertBuilt(): void {
  for (const f of ['dist/src/cli/main.js', 'dist/src/sim/main.js']) {
    if (!existsSync(join(REPO, f))) throw new Error(`${f} is missing: run \`npx tsc -p .\` first`);
  }
}
