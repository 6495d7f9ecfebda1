/** What the parts of one extension share. */
import type { Logger } from '../../src/log/logger.js';
import type { ConfigCache } from '../../src/store/config-cache.js';
import type { LogBuffer } from '../../src/store/log-buffer.js';
import type { NodeKeyStore } from '../../src/store/node-keys.js';
import type { ResolvedOptions } from './options.js';
import type { ExtensionState } from './state.js';

export interface ExtensionContext {
  readonly opts: ResolvedOptions;
  readonly state: ExtensionState;
  readonly nodeKeys: NodeKeyStore;
  readonly configCache: ConfigCache;
  readonly buffer: LogBuffer;
  readonly log: Logger;
  readonly hostIdentifier: string;
  /** Mark the registration disabled (once): stop its loops and tell the supervisor. */
  disable(operation: string): void;
}
