/**
 * Where the control server listens: `unix:///abs/path` (default, under the
 * launcher's root directory) or `host:port` on TCP. The Unix socket is
 * chmod-ed to 0600 (0660 on request) right after binding so that only the
 * launcher's user (and group) can even connect; mutual TLS still applies.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { LauncherError, errorMessage } from '../errors.js';
import { checkUnixSocketPath } from '../osquery/socket-path.js';

export type ListenAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export const CONTROL_SOCKET_NAME = 'control.sock';

export function defaultControlSocketPath(rootDir: string): string {
  return join(rootDir, CONTROL_SOCKET_NAME);
}

export function defaultListen(rootDir: string): string {
  return `unix://${defaultControlSocketPath(rootDir)}`;
}

export function parseListen(listen: string): ListenAddress {
  if (listen.startsWith('unix:')) {
    const path = listen.replace(/^unix:(\/\/)?/, '');
    if (!isAbsolute(path))
      throw new LauncherError('E_CONFIG', `control listen address ${listen}: the socket path must be absolute (unix:///path)`);
    checkUnixSocketPath(path);
    return { kind: 'unix', path };
  }
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65_535) {
    throw new LauncherError(
      'E_CONFIG',
      `control listen address ${JSON.stringify(listen)}: expected unix:///path or host:port (e.g. 127.0.0.1:7443)`,
    );
  }
  return { kind: 'tcp', host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The address string grpc-js binds to. */
export function bindAddress(addr: ListenAddress, port = addr.kind === 'tcp' ? addr.port : 0): string {
  if (addr.kind === 'unix') return `unix://${addr.path}`;
  return addr.host.includes(':') ? `[${addr.host}]:${port}` : `${addr.host}:${port}`;
}

function isAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Remove a stale socket file left by a crashed launcher; refuse if one is still served or the path is not a socket. */
export async function clearStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new LauncherError('E_CONFIG', `control socket path ${path} exists and is not a socket; not removing it`);
  if (await isAlive(path)) throw new LauncherError('E_CONFIG', `another process is already serving the control socket ${path}`);
  try {
    unlinkSync(path);
  } catch (err) {
    throw new LauncherError('E_CONFIG', `cannot remove stale control socket ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

export function restrictSocket(path: string, mode: 0o600 | 0o660): void {
  chmodSync(path, mode);
}

export function removeSocket(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
