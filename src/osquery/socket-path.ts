import { LauncherError } from '../errors.js';

/**
 * osquery-go refuses manager socket paths over 97 bytes, leaving room for the
 * `.NNNNN` extension suffix inside the 104 (macOS) / 108 (Linux) byte limit
 * of sun_path. We apply the same rule on every platform.
 */
export const MAX_MANAGER_SOCKET_PATH = 97;
/** sun_path capacity minus its NUL on Linux. */
export const MAX_UNIX_SOCKET_PATH = 107;

export function checkManagerSocketPath(path: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes === 0) throw new LauncherError('E_SOCKET_PATH_TOO_LONG', 'extension manager socket path is empty');
  if (bytes > MAX_MANAGER_SOCKET_PATH) {
    throw new LauncherError(
      'E_SOCKET_PATH_TOO_LONG',
      `extension manager socket path is ${bytes} bytes, over the ${MAX_MANAGER_SOCKET_PATH}-byte limit: ${path}`,
    );
  }
}

export function checkUnixSocketPath(path: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_UNIX_SOCKET_PATH) {
    throw new LauncherError(
      'E_SOCKET_PATH_TOO_LONG',
      `socket path is ${bytes} bytes, over the ${MAX_UNIX_SOCKET_PATH}-byte limit: ${path}`,
    );
  }
}

/** `<manager socket>.<uuid>`, uuid in decimal (docs/protocol/osquery-extensions.md#socket-paths). */
export function extensionSocketPath(managerPath: string, uuid: number): string {
  return `${managerPath}.${uuid}`;
}
