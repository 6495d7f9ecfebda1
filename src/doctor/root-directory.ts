/**
 * Check: the root directory (state: launcher.db, osquery databases, sockets)
 * is a writable directory closed to other users, or can be created. Writing
 * is proven by creating and removing a probe, not inferred from mode bits
 * (root passes every mode check; a read-only mount or a file in the way does
 * not). The store database in it must be 0600.
 */
import { lstatSync, mkdtempSync, rmdirSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { configSchema } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import { Findings, type CheckResult, type DoctorContext } from './types.js';

/** The store's file in the root directory (src/app/launcher-app.ts opens it). */
export const STORE_FILE = 'launcher.sqlite';

/** The root directory `launcher run` would use with this context. */
export function effectiveRoot(ctx: DoctorContext): string {
  if (ctx.config) return ctx.config.root_directory;
  const fromEnv = ctx.env.LAUNCHER_ROOT;
  return resolve(fromEnv || configSchema.shape.root_directory.parse(undefined));
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Create and remove a directory in `dir`; the error message when that fails. */
function probeWrite(dir: string): string | undefined {
  try {
    rmdirSync(mkdtempSync(join(dir, '.launcher-doctor-')));
    return undefined;
  } catch (err) {
    return errorMessage(err);
  }
}

const octal = (mode: number): string => (mode & 0o777).toString(8).padStart(4, '0');

/** The launcher's database (and its WAL/SHM companions) must be 0600: it holds node keys and enroll state. */
function checkDatabaseMode(f: Findings, root: string): void {
  for (const name of [STORE_FILE, `${STORE_FILE}-wal`, `${STORE_FILE}-shm`]) {
    const path = join(root, name);
    let st: Stats | undefined;
    try {
      st = statOrUndefined(path);
    } catch (err) {
      f.warn(`${path}: cannot inspect: ${errorMessage(err)}`);
      continue;
    }
    if (!st) continue;
    if (!st.isFile()) f.fail(`${path} is not a regular file${st.isSymbolicLink() ? ' (a symlink)' : ''}`);
    else if ((st.mode & 0o077) !== 0) f.warn(`${path} has mode ${octal(st.mode)}; expected 0600 (node keys, buffered logs): chmod 0600 it`);
    else if (name === STORE_FILE) f.pass(`${path} has mode ${octal(st.mode)}`);
  }
}

export async function checkRootDirectory(ctx: DoctorContext): Promise<CheckResult> {
  const f = new Findings('root directory');
  const root = effectiveRoot(ctx);
  let st: Stats | undefined;
  try {
    st = statOrUndefined(root);
  } catch (err) {
    return f.fail(`${root}: cannot inspect: ${errorMessage(err)}`).result();
  }
  if (st) {
    if (!st.isDirectory()) return f.fail(`${root} exists but is not a directory${st.isSymbolicLink() ? ' (a symlink)' : ''}`).result();
    const problem = probeWrite(root);
    if (problem) return f.fail(`${root} is not writable: ${problem}`).result();
    f.pass(`${root} is a writable directory (mode ${octal(st.mode)})`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) f.warn(`${root} is owned by uid ${st.uid}, not ${uid} (the launcher's user)`);
    if ((st.mode & 0o077) !== 0)
      f.warn(`${root} has mode ${octal(st.mode)}: other users can look at node keys and buffered logs; chmod 0700 it`);
    checkDatabaseMode(f, root);
    return f.result();
  }
  // Missing: the launcher creates it (mkdir -p), so the nearest existing ancestor must be a writable directory.
  let ancestor = dirname(root);
  let ast: Stats | undefined;
  for (;;) {
    try {
      ast = statOrUndefined(ancestor);
    } catch (err) {
      return f.fail(`${root} does not exist and ${ancestor} cannot be inspected: ${errorMessage(err)}`).result();
    }
    if (ast || dirname(ancestor) === ancestor) break;
    ancestor = dirname(ancestor);
  }
  if (!ast?.isDirectory()) {
    return f.fail(`${root} cannot be created: ${ancestor} is not a directory`).result();
  }
  const problem = probeWrite(ancestor);
  if (problem) return f.fail(`${root} does not exist and cannot be created: ${ancestor} is not writable (${problem})`).result();
  return f.pass(`${root} does not exist yet; it will be created (0700) under ${ancestor}, which is writable`).result();
}
