/**
 * The connect half of a launch (docs/protocol/device.md#launch, steps 7–11): wait for osqueryd's
 * socket file, connect a manager client, register our extension server, and
 * check osqueryd lists it. Every wait is bounded and stops when the run's
 * signal aborts (osqueryd exited, stop requested).
 */
import { existsSync } from 'node:fs';
import type { Logger } from '../../log/logger.js';
import { ExtensionServer } from '../../osquery/extension-server.js';
import type { ExtensionManagerClient } from '../../osquery/client.js';
import type { Plugin } from '../../osquery/plugins.js';
import { LauncherError, errorMessage } from '../../errors.js';
import type { InstanceTimings } from './instance-options.js';
import { pollUntil } from './wait.js';

export interface ConnectInput {
  socketPath: string;
  manager: ExtensionManagerClient;
  extension: { name: string; version?: string; plugins: readonly Plugin[] };
  timings: InstanceTimings;
  signal: AbortSignal;
  logger: Logger;
  /** Called with each server before start() so the caller's cleanup can reach it. */
  onServer: (server: ExtensionServer) => void;
}

export async function waitForSocket(path: string, t: InstanceTimings, signal: AbortSignal): Promise<void> {
  await pollUntil(`osqueryd socket ${path}`, () => existsSync(path), { timeoutMs: t.socketTimeoutMs, intervalMs: t.socketPollMs, signal });
}

export async function connectManager(manager: ExtensionManagerClient, t: InstanceTimings, signal: AbortSignal): Promise<void> {
  await pollUntil(`extension manager ${manager.path} to answer ping`, async () => (await manager.ping(t.callTimeoutMs)).code === 0, {
    timeoutMs: t.connectTimeoutMs,
    intervalMs: t.connectPollMs,
    signal,
  });
}

/** Register and serve the extension; retried (a fresh server each time) until the connect timeout. */
export async function startExtensionServer(input: ConnectInput): Promise<ExtensionServer> {
  const { timings: t, signal } = input;
  return pollUntil(
    `extension ${input.extension.name} to register with ${input.socketPath}`,
    async () => {
      const server = new ExtensionServer({
        name: input.extension.name,
        version: input.extension.version ?? '',
        managerPath: input.socketPath,
        plugins: input.extension.plugins,
        pingIntervalMs: t.managerPingIntervalMs,
        timeoutMs: t.callTimeoutMs,
        logger: input.logger,
      });
      input.onServer(server);
      try {
        await server.start();
      } catch (err) {
        input.logger.debug({ err: errorMessage(err) }, 'extension registration attempt failed');
        throw err;
      }
      return server;
    },
    { timeoutMs: t.connectTimeoutMs, intervalMs: t.connectPollMs, signal },
  );
}

/** osqueryd's `extensions()` lists `name` (what `--extensions_require` waits for). */
export async function verifyRegistered(manager: ExtensionManagerClient, name: string, t: InstanceTimings): Promise<void> {
  const names = [...(await manager.extensions(t.callTimeoutMs)).values()].map((e) => e.name);
  if (!names.includes(name)) {
    throw new LauncherError(
      'E_EXTENSION_STATUS',
      `osqueryd on ${manager.path} does not list extension ${name} after registering it (has: ${names.join(', ') || 'none'})`,
    );
  }
}

/** `osquery_info` like launcher's SetConnected; undefined fields when the query fails. */
export async function readOsqueryInfo(
  manager: ExtensionManagerClient,
  t: InstanceTimings,
): Promise<{ instanceId?: string; version?: string }> {
  let rows;
  try {
    rows = await manager.query('select instance_id, version from osquery_info order by start_time limit 1', t.callTimeoutMs);
  } catch {
    // Cores (and stand-ins) without osquery_info.start_time.
    rows = await manager.query('select instance_id, version from osquery_info limit 1', t.callTimeoutMs);
  }
  const row = rows[0] ?? {};
  const out: { instanceId?: string; version?: string } = {};
  if (row.instance_id) out.instanceId = row.instance_id;
  if (row.version) out.version = row.version;
  return out;
}
