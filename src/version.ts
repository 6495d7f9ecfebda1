import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (or installed package) root: the nearest package.json named osquery-launcher. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'osquery-launcher') return dir;
      } catch {
        // keep looking
      }
    }
    dir = dirname(dir);
  }
  return process.cwd();
}

let cached: string | undefined;
/** The launcher's version, from package.json. */
export function launcherVersion(): string {
  if (cached) return cached;
  try {
    cached = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    cached = '0.0.0-unknown';
  }
  return cached;
}

export interface BuildInfo {
  commit: string;
  commit_date: string;
  build_date: string;
}

/** What `npm run build` recorded in dist/build-info.json (scripts/gen-build-info.mjs); "unknown" when absent. */
export function buildInfo(): BuildInfo {
  const unknown: BuildInfo = { commit: 'unknown', commit_date: 'unknown', build_date: 'unknown' };
  try {
    const raw = JSON.parse(readFileSync(join(packageRoot(), 'dist', 'build-info.json'), 'utf8')) as Partial<BuildInfo>;
    const text = (v: unknown): string => (typeof v === 'string' && v !== '' ? v : 'unknown');
    return { commit: text(raw.commit), commit_date: text(raw.commit_date), build_date: text(raw.build_date) };
  } catch {
    return unknown;
  }
}
