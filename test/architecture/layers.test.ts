// The folder tree is the architecture: imports point one way, as ALLOWED below
// says. The layering text in docs/CONVENTIONS.md (between the `layering:begin`
// and `layering:end` markers) is rendered from ALLOWED and checked here, so the
// docs cannot drift from the rule. A new import across layers fails here, not in review.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const repo = resolve(import.meta.dirname, '../..');

/**
 * module → modules it may import (besides itself), top layer first. A file
 * belongs to the longest module path that contains it (src/runtime/instance
 * before src/runtime). Leaf files: errors, version, log, registration.
 */
const ALLOWED: Record<string, string[]> = {
  'src/cli': [
    'src/app',
    'src/doctor',
    'src/flare',
    'src/config',
    'src/control',
    'src/devserver',
    'src/runtime',
    'src/errors.ts',
    'src/log',
    'src/version.ts',
  ],
  // issue 18: the flare bundles the doctor's report, the control API's answers and the store's facts.
  'src/flare': ['src/doctor', 'src/config', 'src/control', 'src/runtime', 'src/errors.ts', 'src/log', 'src/version.ts'],
  'src/doctor': [
    'src/app',
    'src/config',
    'src/control',
    'src/device',
    'src/osquery',
    'src/runtime',
    'src/runtime/instance',
    'src/registration',
    'src/errors.ts',
    'src/log',
    'src/version.ts',
  ],
  'src/app': [
    'src/config',
    'src/control',
    'src/device',
    'src/devserver',
    'extensions',
    'src/runtime',
    'src/runtime/instance',
    'src/rungroup',
    'src/state',
    'src/store',
    'src/update',
    'src/osquery',
    'src/registration',
    'src/metrics',
    'src/errors.ts',
    'src/log',
    'src/version.ts',
  ],
  'src/control': ['src/state', 'src/osquery', 'src/registration', 'src/errors.ts', 'src/log', 'src/version.ts'],
  'src/runtime': ['src/runtime/instance', 'src/rungroup', 'src/osquery', 'src/store', 'src/registration', 'src/errors.ts', 'src/log'],
  'src/runtime/instance': ['src/rungroup', 'src/osquery', 'src/store', 'src/registration', 'src/errors.ts', 'src/log'],
  'src/rungroup': ['src/errors.ts', 'src/log'],
  // issue 17: the osqueryd update service sees the runtime only through its own Fleet interface (the app adapts it).
  'src/update': ['src/store', 'src/errors.ts', 'src/log'],
  extensions: ['src/device', 'src/state', 'src/osquery', 'src/store', 'src/registration', 'src/errors.ts', 'src/log'],
  'src/sim': ['src/osquery', 'src/store', 'src/errors.ts', 'src/log'],
  'src/devserver': ['src/store', 'src/errors.ts', 'src/log'],
  // issue 18: metrics read what the app hands them (src/metrics/source.ts); plugins are wrapped by their types.
  'src/metrics': ['src/osquery', 'src/registration', 'src/errors.ts'],
  'src/config': ['src/registration', 'src/errors.ts'],
  'src/state': ['src/osquery', 'src/errors.ts'],
  'src/store': ['src/registration', 'src/errors.ts', 'src/log'],
  'src/device': ['src/errors.ts', 'src/log'],
  'src/osquery': ['src/errors.ts', 'src/log'],
  'src/registration': ['src/errors.ts'],
  'src/errors.ts': [],
  'src/version.ts': [],
  'src/log': [],
};

/** The Markdown block docs/CONVENTIONS.md must hold between its markers. */
function renderLayering(): string {
  return Object.entries(ALLOWED)
    .map(([m, to]) => `- \`${m}\` → ${to.length === 0 ? '(nothing)' : to.map((t) => `\`${t}\``).join(', ')}`)
    .join('\n');
}

function moduleOf(file: string): string | undefined {
  const rel = relative(repo, file);
  const hits = Object.keys(ALLOWED).filter((m) => rel === m || rel === `${m}.ts` || rel.startsWith(`${m}/`));
  return hits.sort((a, b) => b.length - a.length)[0];
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

  it('the allow-list has no cycle', () => {
    const seen = new Set<string>();
    const onPath = new Set<string>();
    const cycles: string[] = [];
    const visit = (m: string, path: string[]): void => {
      if (onPath.has(m)) return void cycles.push([...path, m].join(' → '));
      if (seen.has(m)) return;
      seen.add(m);
      onPath.add(m);
      for (const t of ALLOWED[m] ?? []) visit(t, [...path, m]);
      onPath.delete(m);
    };
    for (const m of Object.keys(ALLOWED)) visit(m, []);
    expect(cycles).toEqual([]);
  });

  // issue 21: CONVENTIONS.md described a layering (runtime → extensions) the allow-list forbids.
  it('docs/CONVENTIONS.md states exactly the allow-list', () => {
    const doc = readFileSync(join(repo, 'docs/CONVENTIONS.md'), 'utf8');
    const block = /<!-- layering:begin[^>]*-->\n([\s\S]*?)\n<!-- layering:end -->/.exec(doc);
    expect(block, 'docs/CONVENTIONS.md has no layering:begin/layering:end block').not.toBeNull();
    expect(block![1], `replace the block in docs/CONVENTIONS.md with:\n${renderLayering()}`).toBe(renderLayering());
  });
});
