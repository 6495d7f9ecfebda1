/**
 * The supervisor's root directory holds secrets (the database with node keys
 * and enroll secrets, secret files, control keys), so it is private (issue
 * 13): created 0700, and an existing one with group or other bits is made
 * 0700 on start. A directory this process does not own, or cannot chmod, is
 * refused with an error naming the path, its owner and its mode.
 */
import { chmodSync, lstatSync, mkdirSync, type statSync } from 'node:fs';
import { LauncherError, errorMessage } from '../errors.js';

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8)}`;

/** Create `dir` 0700, or make an existing one 0700; returns the mode it had (undefined when created). */
export function ensurePrivateDirectory(dir: string): number | undefined {
  let existing: ReturnType<typeof statSync> | undefined;
  try {
    existing = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new LauncherError('E_CONFIG', `root directory ${dir}: cannot inspect it: ${errorMessage(err)}`, { cause: err });
  }
  if (!existing) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700); // mkdir's mode is masked by the umask; 0700 has nothing the umask could add, but be exact
    } catch (err) {
      throw new LauncherError('E_CONFIG', `root directory ${dir}: cannot create it: ${errorMessage(err)}`, { cause: err });
    }
    return undefined;
  }
  if (existing.isSymbolicLink())
    throw new LauncherError('E_CONFIG', `root directory ${dir} is a symbolic link; refusing to keep secrets behind it (use the real path)`);
  if (!existing.isDirectory()) throw new LauncherError('E_CONFIG', `root directory ${dir} exists and is not a directory`);
  const mode = Number(existing.mode) & 0o7777;
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (uid !== undefined && Number(existing.uid) !== uid) {
    throw new LauncherError(
      'E_CONFIG',
      `root directory ${dir} (mode ${octal(mode)}) is owned by uid ${existing.uid}, not by this process (uid ${uid}); refusing to keep secrets in it`,
    );
  }
  if ((mode & 0o7777) !== 0o700) {
    try {
      chmodSync(dir, 0o700);
    } catch (err) {
      throw new LauncherError('E_CONFIG', `root directory ${dir} has mode ${octal(mode)} and cannot be made 0700: ${errorMessage(err)}`, {
        cause: err,
      });
    }
  }
  return mode;
}
