// The project stands on its own (issue 21): protocol facts are cited as
// docs/protocol/<file>.md#<anchor>, never as sections of documents kept
// outside the repository, and every such citation names a heading that exists.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '../..');
const SCANNED = ['src', 'extensions', 'bench', 'test', 'adr', 'proto'];

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    if (name === 'gen' || name === 'node_modules' || name === 'results') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (/\.(ts|mts|mjs|md|thrift|sh)$/.test(name)) yield p;
  }
}

/** GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces → '-'. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchors(doc: string): Set<string> {
  const text = readFileSync(join(repo, 'docs/protocol', doc), 'utf8');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1]!)));
}

describe('protocol citations', () => {
  it('no file cites "reference §N" (documents outside the repository)', () => {
    const hits: string[] = [];
    for (const root of SCANNED) {
      for (const f of files(join(repo, root))) {
        if (f === import.meta.filename) continue;
        readFileSync(f, 'utf8')
          .split('\n')
          .forEach((line, i) => {
            if (/[Rr]eference §|shared\/reference\//.test(line)) hits.push(`${relative(repo, f)}:${i + 1}: ${line.trim()}`);
          });
      }
    }
    expect(hits).toEqual([]);
  });

  it('every docs/protocol/<file>.md#<anchor> citation names an existing heading', () => {
    const known = new Map<string, Set<string>>();
    const broken: string[] = [];
    let cited = 0;
    for (const root of SCANNED) {
      for (const f of files(join(repo, root))) {
        for (const m of readFileSync(f, 'utf8').matchAll(/docs\/protocol\/([a-z-]+\.md)#([a-z0-9-]+)/g)) {
          cited += 1;
          const doc = m[1]!;
          if (!known.has(doc)) known.set(doc, anchors(doc));
          if (!known.get(doc)!.has(m[2]!)) broken.push(`${relative(repo, f)}: ${m[0]}`);
        }
      }
    }
    expect(cited).toBeGreaterThan(50);
    expect(broken).toEqual([]);
  });
});
