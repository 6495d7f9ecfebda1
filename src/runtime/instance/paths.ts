/**
 * Where one run's files live.
 *
 *   <root>/registrations/<id>/osquery.db     per registration, kept across runs
 *   <sockdir>/<short>.em                      extension manager socket, per run
 *   <sockdir>/<short>.em.<uuid>               our extension server's socket
 *   <sockdir>/<short>.pid                     osqueryd's --pidfile
 *   <sockdir>/<short>.run                     our launch record (pid, socket), read by the reaper
 *
 * `<short>` is the random tail of the run's ULID, so names change every run
 * (docs/protocol/device.md#paths) and stay short: the manager socket must fit in 97 bytes
 * (osquery-go's limit, `socket-path.ts`). `<sockdir>` is `<root>/s`, or, when
 * the root is too long for that, a directory under os.tmpdir() derived from
 * the root (so the next start finds it again), created 0700 and checked to be
 * ours.
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LauncherError } from '../../errors.js';
import { MAX_MANAGER_SOCKET_PATH } from '../../osquery/socket-path.js';
import { validateRegistrationId } from '../../store/registrations.js';
import type { RegistrationId } from '../../registration.js';

/** Characters of the run ULID used in file names (its random part: 60 bits). */
export const RUN_SHORT_LENGTH = 12;
/** `<short>.em` */
const SOCKET_NAME_LENGTH = RUN_SHORT_LENGTH + '.em'.length;

export interface InstancePaths {
  registrationDir: string;
  databasePath: string;
  socketDir: string;
  socketPath: string;
  pidfilePath: string;
  runRecordPath: string;
}

export function registrationDir(root: string, registrationId: RegistrationId): string {
  return join(root, 'registrations', validateRegistrationId(registrationId));
}

export function runShortId(runId: string): string {
  if (runId.length < RUN_SHORT_LENGTH)
    throw new LauncherError('E_INTERNAL', `run id ${JSON.stringify(runId)} is shorter than ${RUN_SHORT_LENGTH} characters`);
  return runId.slice(-RUN_SHORT_LENGTH).toLowerCase();
}

export function instancePaths(root: string, registrationId: RegistrationId, runId: string, socketDir: string): InstancePaths {
  const dir = registrationDir(root, registrationId);
  const short = runShortId(runId);
  return {
    registrationDir: dir,
    databasePath: join(dir, 'osquery.db'),
    socketDir,
    socketPath: join(socketDir, `${short}.em`),
    pidfilePath: join(socketDir, `${short}.pid`),
    runRecordPath: join(socketDir, `${short}.run`),
  };
}

/** The preferred socket directory and the tmpdir fallback, in that order (the reaper looks in both). */
export function socketDirCandidates(root: string, tmp = tmpdir()): string[] {
  const digest = createHash('sha256').update(root).digest('hex').slice(0, 12);
  return [join(root, 's'), join(tmp, `olr-${digest}`)];
}

function fits(dir: string): boolean {
  // `<dir>/<short>.em` must fit the manager-socket limit.
  return Buffer.byteLength(dir) + 1 + SOCKET_NAME_LENGTH <= MAX_MANAGER_SOCKET_PATH;
}

/** Create `dir` 0700 and check it is a real directory owned by us and closed to others. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory()) throw new LauncherError('E_PERMISSION_DENIED', `socket directory ${dir} is not a directory (symlink or file)`);
  if (uid !== undefined && st.uid !== uid)
    throw new LauncherError('E_PERMISSION_DENIED', `socket directory ${dir} is owned by uid ${st.uid}, not ${uid}`);
  if ((st.mode & 0o077) !== 0)
    throw new LauncherError(
      'E_PERMISSION_DENIED',
      `socket directory ${dir} has mode ${(st.mode & 0o777).toString(8)}; expected no group/other access`,
    );
}

/**
 * Pick (and create) the socket directory for `root`: `<root>/s` when the
 * socket path fits, else the tmpdir fallback; E_SOCKET_PATH_TOO_LONG when
 * neither fits.
 */
export function resolveSocketDir(root: string, tmp = tmpdir()): string {
  const dir = socketDirCandidates(root, tmp).find(fits);
  if (!dir) {
    throw new LauncherError(
      'E_SOCKET_PATH_TOO_LONG',
      `no socket directory fits the ${MAX_MANAGER_SOCKET_PATH}-byte socket limit: root ${root} and tmpdir ${tmp} are both too long`,
    );
  }
  ensurePrivateDir(dir);
  return dir;
}
