#!/usr/bin/env node
// Bundles the compiled CLI (dist/src/cli/main.js and everything it imports, dependencies included) into
// dist/src/bundle/, minified, one chunk per lazily loaded subcommand (`npm run build`, after tsc). bin/launcher runs
// it instead of the ~630 separate modules: the idle supervisor holds ~5 MB less V8 heap (module records, source text,
// start-up compilation), see adr/0024-idle-footprint.md. Native and runtime-resolved packages stay external and load
// from node_modules as before. The directory is dist/src/<dir> so paths computed from import.meta.url
// (the package root three levels up, proto/ found upwards) resolve as from dist/src/cli.
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'src', 'bundle');
rmSync(out, { recursive: true, force: true });
await build({
  input: join(root, 'dist', 'src', 'cli', 'main.js'),
  platform: 'node',
  // better-sqlite3 loads its .node addon by path; the worker threads require it by its resolved path too.
  external: ['better-sqlite3'],
  logLevel: 'warn',
  output: { dir: out, format: 'esm', minify: true, keepNames: true, sourcemap: false },
});
