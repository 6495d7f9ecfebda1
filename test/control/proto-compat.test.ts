import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { shortTempDir } from '../helpers/tmp.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const proto = readFileSync(join(root, 'proto/launcher/v1/launcher.proto'), 'utf8');

function check(current?: string): { status: number | null; output: string } {
  const args = [join(root, 'scripts/check-proto-compat.mjs')];
  if (current) args.push('--current', current);
  const res = spawnSync(process.execPath, args, { encoding: 'utf8', cwd: root });
  return { status: res.status, output: `${res.stdout}${res.stderr}` };
}

/** A proto root holding launcher/v1/launcher.proto with `edit` applied. */
function variant(dir: string, name: string, edit: (text: string) => string): string {
  const rootDir = join(dir, name);
  mkdirSync(join(rootDir, 'launcher/v1'), { recursive: true });
  const text = edit(proto);
  expect(text).not.toBe(proto); // the edit really changed something
  writeFileSync(join(rootDir, 'launcher/v1/launcher.proto'), text);
  return rootDir;
}

describe('control API compatibility check (scripts/check-proto-compat.mjs)', () => {
  const tmp = shortTempDir('pc');
  afterAll(() => tmp.cleanup());

  it('the committed API is compatible with the committed baseline', () => {
    const res = check();
    expect(res.output).toContain('is compatible');
    expect(res.status).toBe(0);
  });

  it('add-only changes pass', () => {
    const dir = variant(tmp.dir, 'added', (t) =>
      t
        .replace('  string run_id = 6;\n}', '  string run_id = 6;\n  string host = 7;\n}')
        .replace(
          '  rpc StreamOutput(StreamOutputRequest) returns (stream OutputLine);',
          '  rpc StreamOutput(StreamOutputRequest) returns (stream OutputLine);\n  rpc Ping(GetVersionRequest) returns (GetVersionResponse);',
        ),
    );
    const res = check(dir);
    expect(res.output).toContain('is compatible');
    expect(res.status).toBe(0);
  });

  it.each([
    ['a deleted field', (t: string) => t.replace('  uint64 missed = 5;\n', ''), /deleted/],
    ['a renumbered field', (t: string) => t.replace('uint64 missed = 5;', 'uint64 missed = 15;'), /missed/],
    ['a retyped field', (t: string) => t.replace('string run_id = 4;', 'int64 run_id = 4;'), /changed type/],
    ['a renamed field', (t: string) => t.replace('bool healthy = 8;', 'bool is_healthy = 8;'), /name/],
    ['a deleted method', (t: string) => t.replace(/ {2}rpc Query\(QueryRequest\) returns \(QueryResponse\);\n/, ''), /Query/],
    ['a method that stopped streaming', (t: string) => t.replace('returns (stream OutputLine)', 'returns (OutputLine)'), /streaming/],
    [
      'a deleted message',
      (t: string) => t.replace(/message InstanceHealth \{[^}]*\}\n/, '').replace('repeated InstanceHealth instances = 2;', ''),
      /InstanceHealth/,
    ],
  ])('fails on %s', (name, edit, expected) => {
    const res = check(variant(tmp.dir, name.replace(/\W+/g, '-'), edit));
    expect(res.status).toBe(1);
    expect(res.output).toContain('BREAKING');
    expect(res.output).toMatch(expected);
  });

  it('the committed generated types match the .proto (scripts/gen-proto.mjs --check)', () => {
    const res = spawnSync(process.execPath, [join(root, 'scripts/gen-proto.mjs'), '--check'], { encoding: 'utf8', cwd: root });
    expect(`${res.stdout}${res.stderr}`).toContain('up to date');
    expect(res.status).toBe(0);
  });
});
