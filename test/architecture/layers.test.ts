// The folder tree is the architecture: imports point one way
// (cli → app → control/runtime → extensions → device/state/osquery/store → errors/log).
// A new import across layers fails here, not in review.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const repo = resolve(import.meta.dirname, '../..');

/** module → modules it may import (besides itself). Leaf files: errors, version, log, registration-rules. */
const ALLOWED: Record<string, string[]> = {
  'src/log': [],
  'src/errors.ts': [],
  'src/version.ts': [],
  'src/registration-rules.ts': [],
  'src/config': ['src/errors.ts', 'src/registration-rules.ts'],
  'src/osquery': ['src/errors.ts', 'src/log'],
  'src/store': ['src/errors.ts', 'src/log', 'src/registration-rules.ts'],
  'src/state': ['src/osquery', 'src/errors.ts'],
  'src/device': ['src/errors.ts', 'src/log'],
  'extensions': ['src/device', 'src/state', 'src/osquery', 'src/store', 'src/errors.ts', 'src/log', 'src/registration-rules.ts'],
  'src/runtime': ['src/osquery', 'src/store', 'src/state', 'src/errors.ts', 'src/log'],
  'src/control': ['src/state', 'src/osquery', 'src/errors.ts', 'src/log', 'src/version.ts', 'src/registration-rules.ts'],
  'src/sim': ['src/osquery', 'src/store', 'src/errors.ts', 'src/log'],
  'src/devserver': ['src/store', 'src/errors.ts', 'src/log'],
  'src/doctor': ['src/app', 'src/config', 'src/control', 'src/device', 'src/osquery', 'src/runtime', 'src/errors.ts', 'src/log', 'src/version.ts'],
  'src/app': ['src/config', 'src/control', 'src/device', 'src/devserver', 'extensions', 'src/runtime', 'src/state', 'src/store', 'src/osquery', 'src/errors.ts', 'src/log', 'src/version.ts'],
  'src/cli': ['src/app', 'src/doctor', 'src/config', 'src/control', 'src/devserver', 'src/runtime', 'src/errors.ts', 'src/log', 'src/version.ts'],
};

function moduleOf(file: string): string | undefined {
  const rel = relative(repo, file);
  return Object.keys(ALLOWED).find((m) => rel === m || rel.startsWith(`${m}/`));
}

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'gen' || name === 'node_modules') continue;
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

describe('layering', () => {
  it('every relative import stays inside its module or goes to an allowed lower layer', () => {
    const violations: string[] = [];
    for (const file of [...sources(join(repo, 'src')), ...sources(join(repo, 'extensions'))]) {
      const from = moduleOf(file);
      if (!from) {
        violations.push(`${relative(repo, file)}: not in any known module (add it to ALLOWED)`);
        continue;
      }
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'));
        const to = moduleOf(target);
        if (!to || to === from) continue;
        if (!ALLOWED[from]!.includes(to)) violations.push(`${relative(repo, file)} imports ${relative(repo, target)} (${from} → ${to})`);
      }
    }
    expect(violations).toEqual([]);
  });
});
