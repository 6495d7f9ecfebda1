// Issue 17: unpacking a verified archive. A signed archive can still be hostile (a compromised build, a
// repository key misused): entries that would write outside the version directory, links, set-uid files
// are refused as a whole, and nothing is left behind; installed versions are never touched.
import { chmodSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create } from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLauncherError } from '../../src/errors.js';
import { entryProblem, installArchive, installedVersions, removeVersion, stagingDir } from '../../src/update/install.js';
import { shortTempDir } from '../helpers/tmp.js';
import { gzipSync } from 'node:zlib';

let tmp: ReturnType<typeof shortTempDir>;
const root = () => join(tmp.dir, 'root');
const MAX = 64 * 1024 * 1024;

function source(name: string): string {
  const dir = join(tmp.dir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'osqueryd'), '#!/bin/sh\necho osqueryd version 9.9.9\n');
  chmodSync(join(dir, 'osqueryd'), 0o755);
  return dir;
}

async function pack(name: string, cwd: string, entries: string[], preservePaths = false): Promise<string> {
  // Plain tar from tar, gzip from node:zlib: tar's own gzip stream raised an uncaught zlib error now and then (CI).
  const file = join(tmp.dir, `${name}.tar.gz`);
  const plain = `${file}.plain`;
  await create({ file: plain, cwd, preservePaths, portable: true }, entries);
  writeFileSync(file, gzipSync(readFileSync(plain)));
  return file;
}

async function expectRefused(file: string, pattern: RegExp): Promise<void> {
  const err = await installArchive(root(), '9.9.9', file, MAX).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isLauncherError(err, 'E_UPDATE'), String(err)).toBe(true);
  expect((err as Error).message).toMatch(pattern);
  expect(installedVersions(root())).not.toContain('9.9.9');
  expect(existsSync(join(root(), 'osqueryd', '9.9.9'))).toBe(false);
  const staging = stagingDir(root());
  expect(existsSync(staging) ? readdirSync(staging) : []).toEqual([]);
}

beforeEach(() => {
  tmp = shortTempDir('ins');
  mkdirSync(root(), { recursive: true });
});

afterEach(() => tmp.cleanup());

describe('installing an archive', () => {
  it('installs a good archive atomically and leaves an installed version alone on a second install', async () => {
    const file = await pack('good', source('good'), ['osqueryd']);
    const bin = await installArchive(root(), '9.9.9', file, MAX);
    expect(readFileSync(bin, 'utf8')).toContain('9.9.9');
    expect(await installArchive(root(), '9.9.9', join(tmp.dir, 'missing.tar.gz'), MAX)).toBe(bin); // not re-read
    removeVersion(root(), '9.9.9');
    expect(installedVersions(root())).toEqual([]);
  });

  it('refuses an entry with .. in its path, and writes nothing outside', async () => {
    const src = source('dotdot');
    mkdirSync(join(src, 'sub'));
    writeFileSync(join(tmp.dir, 'escape.txt'), 'outside');
    const file = await pack('dotdot', join(src, 'sub'), ['../osqueryd', '../../escape.txt'], true);
    await expectRefused(file, /leaves the archive's directory/);
    expect(existsSync(join(root(), 'osqueryd', 'escape.txt'))).toBe(false);
  });

  it('refuses an absolute path', async () => {
    const src = source('abs');
    const file = await pack('abs', src, ['osqueryd', join(src, 'osqueryd')], true);
    await expectRefused(file, /absolute path/);
  });

  it('refuses a symbolic link (even one pointing inside)', async () => {
    const src = source('sym');
    symlinkSync('/etc/passwd', join(src, 'passwd'));
    await expectRefused(await pack('sym', src, ['osqueryd', 'passwd']), /SymbolicLink/);
  });

  it('refuses a hard link', async () => {
    const src = source('hard');
    linkSync(join(src, 'osqueryd'), join(src, 'again'));
    await expectRefused(await pack('hard', src, ['osqueryd', 'again']), /Link/);
  });

  it('refuses a set-uid file', async () => {
    const src = source('suid');
    chmodSync(join(src, 'osqueryd'), 0o4755);
    await expectRefused(await pack('suid', src, ['osqueryd']), /set-uid/);
  });

  it('refuses an archive without an executable osqueryd at its top, and one that is not a tar.gz', async () => {
    const src = source('nobin');
    writeFileSync(join(src, 'README'), 'x');
    await expectRefused(await pack('nobin', src, ['README']), /no executable osqueryd/);
    writeFileSync(join(tmp.dir, 'junk.tar.gz'), 'not an archive at all');
    await expectRefused(join(tmp.dir, 'junk.tar.gz'), /not a readable tar\.gz/);
  });

  it('refuses an archive that unpacks larger than the bound', async () => {
    const src = source('big');
    writeFileSync(join(src, 'blob'), Buffer.alloc(2 * 1024 * 1024));
    const file = await pack('big', src, ['osqueryd', 'blob']);
    const err = await installArchive(root(), '9.9.9', file, 1024 * 1024).catch((e: unknown) => e);
    expect(isLauncherError(err, 'E_UPDATE')).toBe(true);
    expect((err as Error).message).toMatch(/bytes unpacked/);
  });

  it('names each problem: entryProblem', () => {
    expect(entryProblem('osqueryd', 'File', 0o755)).toBeUndefined();
    expect(entryProblem('./lib/x.so', 'File', 0o644)).toBeUndefined();
    expect(entryProblem('a/../../b', 'File', 0o644)).toMatch(/leaves/);
    expect(entryProblem('/etc/shadow', 'File', 0o644)).toMatch(/absolute/);
    expect(entryProblem('x', 'CharacterDevice', 0o644)).toMatch(/only files and directories/);
    expect(entryProblem('a\\..\\b', 'File', 0o644)).toMatch(/backslash/);
  });
});

describe('a full disk', () => {
  // A real tmpfs of 1 MiB as the root directory (we run as root here; elsewhere the test says why it cannot run).
  const canMount = process.geteuid?.() === 0;
  it.skipIf(!canMount)('fails the new version cleanly and never touches the installed one', async () => {
    const { execFileSync } = await import('node:child_process');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'olr-test-full', root()]);
    try {
      const small = await pack('small', source('small'), ['osqueryd']);
      const bin = await installArchive(root(), '9.9.9', small, MAX);
      const before = readFileSync(bin, 'utf8');
      const src = source('huge');
      writeFileSync(join(src, 'blob'), Buffer.from(Array.from({ length: 3 * 1024 * 1024 }, (_, i) => (i * 7919) % 251))); // barely compressible
      const huge = await pack('huge', src, ['osqueryd', 'blob']);
      const err = await installArchive(root(), '9.9.10', huge, MAX).catch((e: unknown) => e);
      expect(isLauncherError(err, 'E_UPDATE'), String(err)).toBe(true);
      expect((err as Error).message).toMatch(/ENOSPC|no space/i);
      expect(installedVersions(root())).toEqual(['9.9.9']);
      expect(readFileSync(bin, 'utf8')).toBe(before);
      expect(readdirSync(stagingDir(root()))).toEqual([]);
    } finally {
      execFileSync('umount', [root()]);
    }
  });
});
