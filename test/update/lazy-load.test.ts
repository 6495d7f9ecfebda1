// The update client (tuf-js and its dependencies) is loaded on the first repository refresh, not at start: a
// supervisor without `update:` never pays for it in RSS (issue 14's footprint target). A fresh Node process (from
// dist/) imports the app's composition root and reports whether tuf-js is in its module cache; the same probe
// after importing tuf-js itself shows the check can see it.
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '../..');

function tufLoadedAfter(imports: string[]): boolean {
  const script = `
    import { createRequire } from 'node:module';
    for (const m of ${JSON.stringify(imports)}) await import(m);
    const keys = Object.keys(createRequire(import.meta.url).cache);
    console.log(JSON.stringify(keys.some((k) => k.includes('/node_modules/tuf-js/'))));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repo, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as boolean;
}

describe('the update client is loaded lazily', () => {
  it('the app and `launcher run` do not load tuf-js', () => {
    expect(tufLoadedAfter([`${repo}/dist/src/app/launcher-app.js`, `${repo}/dist/src/cli/run.js`])).toBe(false);
  });

  it('the probe sees tuf-js once it is imported', () => {
    expect(tufLoadedAfter(['tuf-js'])).toBe(true);
  });
});
