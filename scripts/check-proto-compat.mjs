#!/usr/bin/env node
// Fails (exit 1) when the control API in proto/launcher/v*/ breaks
// compatibility with the committed baseline proto/launcher/baseline/
// (adr/0003-control-api-compatibility.md). Runs `buf breaking` from the
// npm-installed @bufbuild/buf (a local comparison: no network, no registry)
// with the rules in proto/launcher/buf.yaml (WIRE_JSON plus "never delete an
// RPC, service, message, enum or package").
//
//   node scripts/check-proto-compat.mjs [--current DIR] [--baseline DIR]
//
// DIR is a proto root holding launcher/v<N>/*.proto; defaults: proto/ and
// proto/launcher/baseline/. Both are copied to a temp dir first so that the
// baseline (which lives inside proto/) is never mistaken for part of the API.
// Exit codes: 0 compatible, 1 breaking change, 2 the check could not run.
//
// When a release ships, refresh the baseline:
//   cp proto/launcher/v1/launcher.proto proto/launcher/baseline/launcher/v1/
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bufBin = join(root, 'node_modules/.bin/buf');
const bufConfig = join(root, 'proto/launcher/buf.yaml');

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i === -1) return fallback;
  const value = process.argv[i + 1];
  if (!value) {
    console.error(`check-proto-compat: ${name} needs a directory`);
    process.exit(2);
  }
  return resolve(value);
}

const current = option('--current', join(root, 'proto'));
const baseline = option('--baseline', join(root, 'proto/launcher/baseline'));

/** Copy <from>/launcher/v<N>/ into <to>/launcher/ and add buf.yaml; returns the number of versions copied. */
function stage(from, to) {
  const api = join(from, 'launcher');
  const versions = existsSync(api) ? readdirSync(api).filter((d) => /^v\d+$/.test(d)) : [];
  mkdirSync(join(to, 'launcher'), { recursive: true });
  for (const v of versions) cpSync(join(api, v), join(to, 'launcher', v), { recursive: true, filter: (src) => !src.endsWith('.yaml') });
  cpSync(bufConfig, join(to, 'buf.yaml'));
  return versions.length;
}

if (!existsSync(bufBin)) {
  console.error(`check-proto-compat: ${bufBin} not found (devDependency @bufbuild/buf; run npm install)`);
  process.exit(2);
}
/** Stage both trees, run buf, return the exit code (the temp dir is removed by the caller). */
function compare(tmp) {
  const cur = join(tmp, 'current');
  const base = join(tmp, 'baseline');
  if (stage(current, cur) === 0) {
    console.error(`check-proto-compat: no launcher/v<N>/ directory under ${current}`);
    return 2;
  }
  if (stage(baseline, base) === 0) {
    console.error(`check-proto-compat: no launcher/v<N>/ directory under ${baseline}`);
    return 2;
  }
  const res = spawnSync(bufBin, ['breaking', cur, '--against', base, '--error-format', 'text'], {
    encoding: 'utf8',
    env: { ...process.env, BUF_CACHE_DIR: join(tmp, 'cache') },
  });
  const show = (text) => (text ?? '').split(`${cur}/`).join(`${current}/`).trim();
  if (res.error) {
    console.error(`check-proto-compat: cannot run buf: ${res.error.message}`);
    return 2;
  }
  if (res.status === 0) {
    console.log(`check-proto-compat: ${current} is compatible with ${baseline}`);
    return 0;
  }
  if (res.status === 100) {
    console.error(`check-proto-compat: BREAKING changes against ${baseline}:`);
    console.error(show(res.stdout));
    console.error('Only add fields, messages and methods (adr/0003); breaking changes need launcher.v2.');
    return 1;
  }
  console.error(`check-proto-compat: buf failed (exit ${res.status}):\n${show(res.stdout)}\n${show(res.stderr)}`);
  return 2;
}

const tmp = mkdtempSync(join(tmpdir(), 'protocompat-'));
let code = 2;
try {
  code = compare(tmp);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.exitCode = code;
