/**
 * How osqueryd talks to an extension (docs/protocol/osquery-extensions.md#connection-patterns):
 * a new connection for every operation, closed afterwards; a plugin call is
 * preceded by a check that `<socket>.<uuid>` exists and is writable and by a
 * ping on its own connection.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { ExtensionClient } from '../osquery/client.js';
import { response, status, type ExtensionResponse, type ExtensionStatus, type PluginRequest } from '../osquery/protocol.js';
import { errorMessage } from '../errors.js';

/** osqueryd's path-check ping timeout. */
export const PING_TIMEOUT_MS = 10_000;

/** Ping on a fresh connection; rejects on any transport failure. */
export async function pingExtension(path: string, timeoutMs = PING_TIMEOUT_MS): Promise<ExtensionStatus> {
  const client = new ExtensionClient(path, { timeoutMs });
  try {
    return await client.ping();
  } finally {
    client.close();
  }
}

/** A ping counts as healthy unless it fails or answers code 1 (0 and 2 are fine). */
export async function extensionHealthy(path: string, timeoutMs = PING_TIMEOUT_MS): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return (await pingExtension(path, timeoutMs)).code !== 1;
  } catch {
    return false;
  }
}

/** Call a plugin the extension at `path` owns. Failures come back as status code 1. */
export async function callExtension(
  path: string,
  registry: string,
  item: string,
  request: PluginRequest,
  timeoutMs: number,
): Promise<ExtensionResponse> {
  try {
    await access(path, constants.W_OK);
  } catch {
    return response(status(1, `Extension socket not available: ${path}`));
  }
  try {
    const st = await pingExtension(path, Math.min(timeoutMs, PING_TIMEOUT_MS));
    if (st.code === 1) return response(status(1, `Extension ping failed: ${st.message}`));
    const client = new ExtensionClient(path, { timeoutMs });
    try {
      return await client.call(registry, item, request);
    } finally {
      client.close();
    }
  } catch (err) {
    return response(status(1, `Extension call failed: ${errorMessage(err)}`));
  }
}
