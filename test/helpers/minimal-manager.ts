/**
 * A minimal extension manager for Thrift-layer tests: a real ThriftServer on a
 * real Unix socket serving the ExtensionManager service with just enough
 * bookkeeping (register, deregister, extensions, call forwarding) to exercise
 * the client and ExtensionServer. The full osqueryd behaviour lives in the
 * stand-in (src/sim); this keeps the protocol tests independent of it.
 */
import { ThriftServer } from '../../src/osquery/server.js';
import { ExtensionClient } from '../../src/osquery/client.js';
import {
  ExtensionManagerProcessor,
  extensionInfo,
  response,
  status,
  type ExtensionManagerHandler,
  type ExtensionRegistry,
  type InternalExtensionInfo,
} from '../../src/osquery/protocol.js';

export interface MinimalManager {
  server: ThriftServer;
  registered: Map<number, { info: InternalExtensionInfo; registry: ExtensionRegistry }>;
  /** Hooks tests may replace. */
  hooks: { query?: (sql: string) => Promise<unknown> };
  close(): Promise<void>;
}

export async function startMinimalManager(path: string): Promise<MinimalManager> {
  const registered = new Map<number, { info: InternalExtensionInfo; registry: ExtensionRegistry }>();
  let nextUuid = 100;
  const hooks: MinimalManager['hooks'] = {};
  const handler: ExtensionManagerHandler = {
    ping: () => status(0, 'pong'),
    call: async (registry, item) => {
      for (const [uuid, ext] of registered) {
        if (ext.registry[registry]?.[item]) {
          const client = new ExtensionClient(`${path}.${uuid}`);
          try {
            return await client.call(registry, item, { action: 'generate', context: '{"constraints":[]}' });
          } finally {
            client.close();
          }
        }
      }
      return response(status(1, `Unknown registry plugin: ${item}`));
    },
    shutdown: () => undefined,
    extensions: () => Object.fromEntries([...registered].map(([uuid, e]) => [String(uuid), e.info])),
    options: () => ({}),
    registerExtension: (info, registry) => {
      for (const e of registered.values()) {
        if (e.info.name === info.name) return status(1, 'Duplicate extension registered');
      }
      const uuid = nextUuid++;
      registered.set(uuid, { info: extensionInfo(info), registry });
      return status(0, 'OK', uuid);
    },
    deregisterExtension: (uuid) => {
      if (!registered.delete(Number(uuid))) return status(1, 'No extension UUID found');
      return status(0, 'OK');
    },
    query: async (sql) => {
      if (hooks.query) await hooks.query(sql);
      return response(status(0, 'OK'), [{ sql }]);
    },
    getQueryColumns: () => response(status(0, 'OK'), [{ sql: 'TEXT' }]),
  };
  const server = new ThriftServer(path, () => new ExtensionManagerProcessor(handler));
  await server.listen();
  return { server, registered, hooks, close: () => server.close() };
}
