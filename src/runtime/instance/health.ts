/**
 * Instance health (docs/protocol/device.md#health-check): each of our extension servers answers a
 * ping on its own socket, and osqueryd's extension list still holds every one
 * of them (the failure fleet#52093 never notices). Checked on an interval
 * after a startup delay; `maxFailures` failures in a row end the run.
 */
import { ExtensionClient, type ExtensionManagerClient } from '../../osquery/client.js';
import { LauncherError, errorMessage } from '../../errors.js';

export interface HealthTarget {
  manager: ExtensionManagerClient;
  servers: ReadonlyArray<{ name: string; socketPath: string }>;
  timeoutMs: number;
}

/** One check; throws a LauncherError naming what failed. */
export async function checkInstanceHealth(target: HealthTarget): Promise<void> {
  for (const server of target.servers) {
    const client = new ExtensionClient(server.socketPath, { timeoutMs: target.timeoutMs });
    try {
      const st = await client.ping();
      if (st.code !== 0)
        throw new LauncherError('E_EXTENSION_STATUS', `extension ${server.name} ping returned code ${st.code}: ${st.message}`);
    } catch (err) {
      if (err instanceof LauncherError && err.code === 'E_EXTENSION_STATUS') throw err;
      throw new LauncherError(
        'E_THRIFT_CONNECTION',
        `extension ${server.name} does not answer ping on ${server.socketPath}: ${errorMessage(err)}`,
        { cause: err },
      );
    } finally {
      client.close();
    }
  }
  let registered: Set<string>;
  try {
    registered = new Set([...(await target.manager.extensions(target.timeoutMs)).values()].map((e) => e.name));
  } catch (err) {
    throw new LauncherError(
      'E_THRIFT_CONNECTION',
      `osqueryd does not answer extensions() on ${target.manager.path}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
  const missing = target.servers.filter((s) => !registered.has(s.name)).map((s) => s.name);
  if (missing.length > 0) {
    throw new LauncherError(
      'E_EXTENSION_STATUS',
      `osqueryd no longer lists extension(s) ${missing.join(', ')} (has: ${[...registered].join(', ') || 'none'})`,
    );
  }
}

export interface HealthMonitorOptions {
  check: () => Promise<void>;
  intervalMs: number;
  startupDelayMs: number;
  maxFailures: number;
  /** Aborting stops the monitor (the run's controller). */
  signal: AbortSignal;
  /** Each result; `failures` is the current run of consecutive failures. */
  onResult: (err: Error | undefined, failures: number) => void;
  /** Called once, with the last error, when `maxFailures` is reached. */
  onGiveUp: (err: Error) => void;
}

/** Run checks one after another (never overlapping) until aborted or given up. */
export function startHealthMonitor(o: HealthMonitorOptions): void {
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (ms: number) => {
    if (o.signal.aborted) return;
    timer = setTimeout(() => void tick(), ms);
  };
  const tick = async () => {
    let error: Error | undefined;
    try {
      await o.check();
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    if (o.signal.aborted) return;
    failures = error ? failures + 1 : 0;
    o.onResult(error, failures);
    if (error && failures >= o.maxFailures) {
      o.onGiveUp(
        new LauncherError('E_TIMEOUT', `health check failed ${failures} times in a row; last: ${error.message}`, { cause: error }),
      );
      return;
    }
    schedule(o.intervalMs);
  };
  o.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  schedule(o.startupDelayMs);
}
