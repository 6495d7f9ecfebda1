#!/usr/bin/env node
// Writes dist/build-info.json {commit, commit_date, build_date} at build time (`npm run build`), read by
// src/version.ts for `launcher --version` / `launcher version`. Outside a git checkout (a tarball) the commit is
// "unknown"; dist/ is gitignored, so the file never lands in the repository.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function git(...args) {
  try {
    return (
      execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim() || 'unknown'
    );
  } catch {
    return 'unknown';
  }
}

let commit = git('rev-parse', '--short=12', 'HEAD');
if (commit !== 'unknown' && git('status', '--porcelain', '--untracked-files=no') !== 'unknown') commit += '-dirty';
const info = { commit, commit_date: git('log', '-1', '--format=%cI'), build_date: new Date().toISOString() };
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, 'dist', 'build-info.json'), `${JSON.stringify(info, null, 2)}\n`);
