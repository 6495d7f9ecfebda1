/** What the parts of one extension share. */
import type { CallOptions } from '../../src/device/index.js';
import type { Logger } from '../../src/log/logger.js';
import type { ConfigCache } from '../../src/store/config-cache.js';
import type { LogBuffer } from '../../src/store/log-buffer.js';
import type { NodeKeyStore } from '../../src/store/node-keys.js';
import type { DeploymentUrls } from '../../src/store/registrations.js';
import type { DetailsReader } from './details.js';
import type { ResolvedOptions } from './options.js';
import type { QueryQuarantine } from './quarantine.js';
import type { ExtensionState } from './state.js';

export interface ExtensionContext {
  readonly opts: ResolvedOptions;
  readonly state: ExtensionState;
  readonly nodeKeys: NodeKeyStore;
  readonly configCache: ConfigCache;
  readonly buffer: LogBuffer;
  readonly log: Logger;
  readonly hostIdentifier: string;
  readonly details: DetailsReader;
  /** This run's query quarantine (issue 16). */
  readonly quarantine: QueryQuarantine;
  /** This registration's device server when the backend moved it (wrong_region), else undefined: the client's own. */
  deviceUrl(): string | undefined;
  /** Keep the URLs the backend handed out (validated, persisted with the registration). */
  moveTo(urls: DeploymentUrls): void;
  /** Mark the registration disabled (once): stop its loops and tell the supervisor. */
  disable(operation: string): void;
}

/** Signal and server URL of every device call of this registration. */
export function callOptions(ctx: ExtensionContext): CallOptions {
  const serverUrl = ctx.deviceUrl();
  return { signal: ctx.state.abort.signal, ...(serverUrl ? { serverUrl } : {}) };
}
