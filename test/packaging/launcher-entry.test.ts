/**
 * bin/launcher picks its entry (adr/0024-idle-footprint.md): the rolldown bundle in dist/src/bundle when it is at
 * least as new as tsc's dist/src/cli/main.js, else the separate modules, so a tsc-only rebuild never runs a stale
 * bundle. Real `node` processes on a copy of bin/launcher with stand-in entries that say which one ran.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..', '..');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A tree with bin/launcher and the given entries; each entry prints its name. Times in seconds since the epoch. */
function tree(entries: Partial<Record<'cli' | 'bundle', number>>): string {
  const root = mkdtempSync(join(tmpdir(), 'launcher-entry-'));
  dirs.push(root);
  mkdirSync(join(root, 'bin'));
  copyFileSync(join(REPO, 'bin/launcher'), join(root, 'bin/launcher'));
  for (const [name, time] of Object.entries(entries)) {
    const dir = join(root, 'dist/src', name);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'main.js');
    writeFileSync(file, `process.stdout.write(${JSON.stringify(name)});\n`);
    utimesSync(file, time, time);
  }
  return root;
}

const run = (root: string): string => execFileSync(process.execPath, [join(root, 'bin/launcher')], { encoding: 'utf8' });

describe('bin/launcher entry', () => {
  it('runs the bundle when it is as new as the tsc output or newer', () => {
    expect(run(tree({ cli: 1_000_000, bundle: 1_000_000 }))).toBe('bundle');
    expect(run(tree({ cli: 1_000_000, bundle: 2_000_000 }))).toBe('bundle');
  });

  it('runs the separate modules when the bundle is older (tsc ran again) or missing', () => {
    expect(run(tree({ cli: 2_000_000, bundle: 1_000_000 }))).toBe('cli');
    expect(run(tree({ cli: 1_000_000 }))).toBe('cli');
  });

  it('says how to build when dist/ is missing', () => {
    let err: { status?: number; stderr?: string } = {};
    try {
      execFileSync(process.execPath, [join(tree({}), 'bin/launcher')], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.status).not.toBe(0);
    expect(err.stderr).toContain('dist/ is missing; run `npm run build` first');
  });
});
