import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

/** An executable named `cmd` on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const p = join(dir, cmd);
    if (spawnSync('test', ['-x', p]).status === 0) return p;
  }
  return undefined;
}

/** Pids of live processes whose command line mentions every needle (e.g. an extracted package root). */
export function processesMentioning(...needles: string[]): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (/^\d+ \(.*\) Z /.test(stat)) continue; // a zombie is already dead
      if (needles.every((n) => cmdline.includes(n))) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Why the package cannot be built here, or undefined when it can. */
export function packageBuildBlocker(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (!which('dpkg-deb') || !which('dpkg')) return 'dpkg-deb not installed (apt-get install dpkg)';
  for (const f of ['bin/launcher', 'dist/src/cli/main.js', 'node_modules/better-sqlite3/build/Release/better_sqlite3.node']) {
    if (!existsSync(join(REPO, f))) return `${f} is missing (npm ci && npx tsc -p .)`;
  }
  return undefined;
}

/** Symlinks under `dir` whose target does not exist (relative to `dir`). */
export function danglingLinks(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel))) {
    const p = join(rel, name);
    const st = lstatSync(join(dir, p));
    if (st.isSymbolicLink() && !existsSync(join(dir, p))) out.push(p);
    else if (st.isDirectory()) out.push(...danglingLinks(dir, p));
  }
  return out;
}

/** Build the packages (scripts/package-deb.mjs, as `npm run package`) into `out`; its JSON result. */
export async function buildPackages(out: string, formats: 'deb' | 'rpm' | 'deb,rpm'): Promise<{ deb?: string; rpm?: string }> {
  const built = await execa(process.execPath, [join(REPO, 'scripts/package-deb.mjs'), '--out', out, '--formats', formats, '--json'], {
    reject: false,
    timeout: 280_000,
  });
  if (built.exitCode !== 0) throw new Error(`package build failed (${built.exitCode}):\n${built.stderr}\n${built.stdout}`);
  return JSON.parse(built.stdout.trim().split('\n').at(-1)!) as { deb?: string; rpm?: string };
}
