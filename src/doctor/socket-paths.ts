/**
 * Check: the Unix sockets the runtime creates fit their limits, using the
 * runtime's own rule (src/runtime/instance/paths.ts): the extension manager socket
 * `<root>/s/<12 chars>.em` must stay within osquery-go's 97 bytes; when it
 * does not, the runtime moves sockets to `<tmpdir>/olr-<hash>`. The control
 * API's default socket `<root>/control.sock` has no fallback and must fit
 * sun_path (107 bytes).
 */
import { parseListen, defaultListen } from '../control/listen.js';
import { errorMessage } from '../errors.js';
import { checkManagerSocketPath, MAX_MANAGER_SOCKET_PATH, MAX_UNIX_SOCKET_PATH } from '../osquery/socket-path.js';
import { instancePaths, socketDirCandidates } from '../runtime/instance/paths.js';
import { effectiveRoot } from './root-directory.js';
import { Findings, type CheckResult, type DoctorContext } from './types.js';
import { parseRegistrationId } from '../registration.js';

/** A run id of the runtime's shape (a ULID, 26 characters); only its length matters here. */
const SAMPLE_RUN_ID = '01JZZZZZZZZZZZZZZZZZZZZZZZ';

/** The manager socket path the runtime would use in `socketDir`. */
export function managerSocketPath(root: string, socketDir: string): string {
  return instancePaths(root, parseRegistrationId('doctor'), SAMPLE_RUN_ID, socketDir).socketPath;
}

export async function checkSocketPaths(ctx: DoctorContext): Promise<CheckResult> {
  const f = new Findings('socket paths');
  const root = effectiveRoot(ctx);
  const [preferred, fallback] = socketDirCandidates(root, ctx.tmpdir) as [string, string];
  const bytes = (p: string) => Buffer.byteLength(p);
  const fits = (p: string): boolean => {
    try {
      checkManagerSocketPath(p);
      return true;
    } catch {
      return false;
    }
  };
  const main = managerSocketPath(root, preferred);
  const alt = managerSocketPath(root, fallback);
  if (fits(main)) {
    f.pass(`osquery socket ${main} is ${bytes(main)} bytes (limit ${MAX_MANAGER_SOCKET_PATH})`);
  } else if (fits(alt)) {
    f.warn(
      `root directory ${root} is long: ${main} would be ${bytes(main)} bytes (limit ${MAX_MANAGER_SOCKET_PATH}), ` +
        `so osquery sockets go to ${fallback} (${bytes(alt)} bytes); a shorter root_directory keeps them with the state`,
    );
  } else {
    f.fail(
      `root directory ${root} is too long: the osquery socket ${main} would be ${bytes(main)} bytes, over the ${MAX_MANAGER_SOCKET_PATH}-byte limit, ` +
        `and the fallback ${alt} (${bytes(alt)} bytes) does not fit either; use a shorter root_directory`,
    );
  }
  const control = ctx.config?.control;
  if (control?.enabled === false) return f.result();
  const listen = control?.listen ?? defaultListen(root);
  if (!listen.startsWith('unix:')) return f.pass(`control API listens on TCP ${listen}`).result();
  try {
    const addr = parseListen(listen);
    if (addr.kind === 'unix') f.pass(`control socket ${addr.path} is ${bytes(addr.path)} bytes (limit ${MAX_UNIX_SOCKET_PATH})`);
  } catch (err) {
    f.fail(`control socket: ${errorMessage(err)}${control?.listen ? '' : '; set a shorter root_directory or control.listen'}`);
  }
  return f.result();
}
