/**
 * The flare's one file: a gzip'd tar (the `tar` package) of the collected
 * texts under `launcher-flare/`. The output is created new (O_CREAT|O_EXCL,
 * O_NOFOLLOW, 0600): an existing file or a symlink at the path is refused,
 * never followed or overwritten. The texts are staged in a private temporary
 * directory that is removed afterwards.
 */
import { closeSync, constants, createWriteStream, mkdirSync, mkdtempSync, openSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { create } from 'tar';
import { LauncherError, errorMessage } from '../errors.js';

export const ARCHIVE_DIR = 'launcher-flare';

/** Open `path` for a new archive; E_ALREADY_EXISTS when anything (file, directory, symlink) is there. */
export function openNewOutput(path: string): number {
  try {
    return openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ELOOP')
      throw new LauncherError(
        'E_ALREADY_EXISTS',
        `flare output ${path} already exists (file, directory or symlink); refusing to overwrite it`,
      );
    throw new LauncherError('E_INVALID_ARGUMENT', `cannot create flare output ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

/** Write `files` (archive-relative path → text) as a .tar.gz at `path`. */
export async function writeArchive(path: string, files: ReadonlyMap<string, string>): Promise<void> {
  const fd = openNewOutput(path);
  const stage = mkdtempSync(join(tmpdir(), 'flare-'));
  try {
    for (const [name, text] of files) {
      if (name.split('/').some((p) => p === '..' || p === '')) throw new LauncherError('E_INTERNAL', `bad flare entry name ${name}`);
      const dest = join(stage, ARCHIVE_DIR, name);
      mkdirSync(dirname(dest), { recursive: true, mode: 0o700 });
      writeFileSync(dest, text, { mode: 0o600 });
    }
    const pack = create({ gzip: true, cwd: stage, portable: true }, [ARCHIVE_DIR]);
    await pipeline(pack, createWriteStream('', { fd, autoClose: true }));
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // closed by the stream
    }
    unlinkSync(path);
    throw err;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
