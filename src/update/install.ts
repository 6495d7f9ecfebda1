/**
 * Installed osqueryd versions, side by side (issue 17):
 *
 *   <root>/osqueryd/<version>/osqueryd     one directory per verified version
 *   <root>/osqueryd/.staging/              downloads and unpacking in progress
 *
 * An archive is unpacked into a fresh directory under `.staging/` and moved
 * to `<version>/` with one rename(2), so a version directory is either
 * complete or absent: an interrupted download, a crash mid-unpack or a full
 * disk leaves only staging debris (removed at the next start), never a half
 * version, and never touches a version that runs. Removing an old version
 * renames it into staging first, for the same reason.
 *
 * The archive is checked entry by entry before anything is written: only
 * regular files and directories, relative paths without `..`, no absolute
 * paths, no links of any kind, no set-uid/set-gid bits, bounded entry count
 * and total size; one bad entry refuses the whole archive (E_UPDATE). The
 * unpacker (`tar`) then runs with a filter that admits the same types only,
 * strict warnings and no owner changes.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { ReadEntry } from 'tar';
import { LauncherError, errorMessage } from '../errors.js';
import { versionProblem } from './version.js';

/** The file an archive must hold at its top level. */
export const BINARY_NAME = 'osqueryd';
export const MAX_ENTRIES = 10_000;

export function versionsDir(root: string): string {
  return join(root, 'osqueryd');
}

export function stagingDir(root: string): string {
  return join(versionsDir(root), '.staging');
}

/** `<root>/osqueryd/<version>/osqueryd`; the version is checked first. */
export function binaryPath(root: string, version: string): string {
  const p = versionProblem(version);
  if (p !== undefined) throw new LauncherError('E_INVALID_ARGUMENT', `version ${p}`);
  return join(versionsDir(root), version, BINARY_NAME);
}

/** The version's binary is installed (a regular, executable file). */
export function isInstalled(root: string, version: string): boolean {
  try {
    const st = statSync(binaryPath(root, version));
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Installed versions (directories whose name is a version). */
export function installedVersions(root: string): string[] {
  try {
    return readdirSync(versionsDir(root)).filter((n) => versionProblem(n) === undefined && isInstalled(root, n));
  } catch {
    return [];
  }
}

/** Remove what an interrupted download or unpack left in staging. */
export function clearStaging(root: string): void {
  rmSync(stagingDir(root), { recursive: true, force: true });
}

/** A fresh directory under staging (for a download or an unpack). */
export function makeStagingDir(root: string, prefix: string): string {
  mkdirSync(stagingDir(root), { recursive: true, mode: 0o700 });
  return mkdtempSync(join(stagingDir(root), `${prefix}-`));
}

/** Why an archive entry is refused, or undefined when it is acceptable. Exported for tests. */
export function entryProblem(path: string, type: string, mode: number | undefined): string | undefined {
  if (type !== 'File' && type !== 'OldFile' && type !== 'Directory')
    return `entry ${JSON.stringify(path)} is a ${type}: only files and directories`;
  if (path.length === 0 || path.length > 255) return `entry path of ${path.length} characters`;
  if (/[\x00-\x1f\\]/.test(path)) return `entry ${JSON.stringify(path)} has a control character or backslash`;
  if (path.startsWith('/')) return `entry ${JSON.stringify(path)} is an absolute path`;
  const parts = path
    .replace(/^\.\//, '')
    .split('/')
    .filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) return `entry ${JSON.stringify(path)} leaves the archive's directory`;
  if (parts.length > 16) return `entry ${JSON.stringify(path)} is nested too deep`;
  if (mode !== undefined && (mode & 0o6000) !== 0) return `entry ${JSON.stringify(path)} is set-uid or set-gid`;
  return undefined;
}

/** Tar headers and padding on top of the file bytes an archive may unpack to. */
const TAR_OVERHEAD_BYTES = 16 * 1024 * 1024;

/**
 * Decompress `file` (gzip) next to it as `<file>.tar`, bounded by `maxUnpackedBytes`, run `use` on the plain tar,
 * and remove it. tar is then never handed gzip data: its zlib stream raised a damaged archive's error outside any
 * promise (an uncaught exception that would end the supervisor); here the error is ours, in a try.
 */
async function withPlainTar<T>(file: string, maxUnpackedBytes: number, use: (tarFile: string) => Promise<T>): Promise<T> {
  let raw: Buffer;
  try {
    raw = gunzipSync(readFileSync(file), { maxOutputLength: maxUnpackedBytes + TAR_OVERHEAD_BYTES });
  } catch (err) {
    throw new LauncherError(
      'E_UPDATE',
      `archive ${file} is not a readable tar.gz (or unpacks past ${maxUnpackedBytes} bytes): ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
  const tarFile = `${file}.tar`;
  try {
    writeFileSync(tarFile, raw, { mode: 0o600 });
  } catch (err) {
    rmSync(tarFile, { force: true });
    throw new LauncherError('E_UPDATE', `cannot stage ${tarFile}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    return await use(tarFile);
  } finally {
    rmSync(tarFile, { force: true });
  }
}

/** Check every entry of the archive; throws E_UPDATE naming the first problem. */
export async function checkArchive(file: string, maxUnpackedBytes: number): Promise<void> {
  await withPlainTar(file, maxUnpackedBytes, (tarFile) => checkPlainTar(file, tarFile, maxUnpackedBytes));
}

async function checkPlainTar(file: string, tarFile: string, maxUnpackedBytes: number): Promise<void> {
  const problems: string[] = [];
  let entries = 0;
  let bytes = 0;
  // tar is loaded when an archive is first checked, not at start (most supervisors never update).
  const { list } = await import('tar');
  try {
    await list({
      file: tarFile,
      strict: true,
      onReadEntry: (e: ReadEntry) => {
        entries += 1;
        bytes += e.size ?? 0;
        const p = entryProblem(e.path, e.type, e.mode);
        if (p) problems.push(p);
        e.resume();
      },
    });
  } catch (err) {
    throw new LauncherError('E_UPDATE', `archive ${file} is not a readable tar.gz: ${errorMessage(err)}`, { cause: err });
  }
  if (problems.length > 0)
    throw new LauncherError(
      'E_UPDATE',
      `archive refused: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`,
    );
  if (entries > MAX_ENTRIES) throw new LauncherError('E_UPDATE', `archive refused: ${entries} entries, at most ${MAX_ENTRIES}`);
  if (bytes > maxUnpackedBytes)
    throw new LauncherError('E_UPDATE', `archive refused: ${bytes} bytes unpacked, at most ${maxUnpackedBytes}`);
}

/**
 * Unpack a verified archive as `version`: check it, unpack into staging,
 * require an executable `osqueryd` at its top, rename into place. An
 * already-installed version is left as it is. Returns the binary's path.
 */
export async function installArchive(root: string, version: string, archive: string, maxUnpackedBytes: number): Promise<string> {
  const dest = join(versionsDir(root), version);
  const binary = binaryPath(root, version);
  if (isInstalled(root, version)) return binary;
  await checkArchive(archive, maxUnpackedBytes);
  const tmp = makeStagingDir(root, `unpack-${version}`);
  const { extract } = await import('tar');
  const expected = new Map<string, number>();
  try {
    await withPlainTar(archive, maxUnpackedBytes, (tarFile) =>
      extract({
        file: tarFile,
        cwd: tmp,
        strict: true,
        preserveOwner: false,
        filter: (path, entry) => {
          const e = entry as ReadEntry;
          const ok = entryProblem(path, e.type, e.mode) === undefined;
          if (ok && (e.type === 'File' || e.type === 'OldFile')) expected.set(path, e.size ?? 0);
          return ok;
        },
      }),
    );
    // tar drops a file's write error (a full disk leaves it short and the extraction still resolves): every file
    // must have the size its header gave, or the version is not installed.
    for (const [path, size] of expected) {
      const got = statSync(join(tmp, path), { throwIfNoEntry: false })?.size ?? -1;
      if (got !== size)
        throw new LauncherError(
          'E_UPDATE',
          `unpacking ${version} stopped short: ${path} has ${Math.max(got, 0)} of ${size} bytes (no space left on the device?)`,
        );
    }
    const st = statSync(join(tmp, BINARY_NAME), { throwIfNoEntry: false });
    if (!st?.isFile() || (st.mode & 0o111) === 0)
      throw new LauncherError('E_UPDATE', `archive for ${version} has no executable ${BINARY_NAME} at its top level`);
    if (existsSync(dest)) rmSync(dest, { recursive: true, force: true }); // an incomplete leftover (no binary): replace it
    renameSync(tmp, dest);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (err instanceof LauncherError) throw err;
    throw new LauncherError('E_UPDATE', `unpacking ${version} into ${dest} failed: ${errorMessage(err)}`, { cause: err });
  }
  return binary;
}

/** Remove an installed version: renamed into staging (gone from view at once), then deleted. */
export function removeVersion(root: string, version: string): void {
  const dir = join(versionsDir(root), version);
  if (versionProblem(version) !== undefined || !existsSync(dir)) return;
  mkdirSync(stagingDir(root), { recursive: true, mode: 0o700 });
  const trash = join(stagingDir(root), `removed-${version}-${process.pid}-${Date.now()}`);
  renameSync(dir, trash);
  rmSync(trash, { recursive: true, force: true });
}
