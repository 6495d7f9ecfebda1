/**
 * A minimal extension for the runtime benchmarks: config, logger and
 * distributed plugins with no network behind them, so the figures measure the
 * supervisor and osqueryd start-up, not a device server.
 */
import type { ExtensionFactory } from '../src/runtime/instance/extension.js';

export const benchExtensionFactory: ExtensionFactory = ({ registrationId }) => {
  let logLines = 0;
  return {
    name: 'kolide_grpc',
    plugins: [
      { kind: 'config', name: 'kolide_grpc', genConfig: async () => ({ main: JSON.stringify({ options: {}, schedule: {} }) }) },
      {
        kind: 'logger',
        name: 'kolide_grpc',
        logString: () => void (logLines += 1),
        logStatus: (entries) => void (logLines += entries.length),
      },
      { kind: 'distributed', name: 'kolide_grpc', getQueries: async () => ({ queries: {} }), writeResults: async () => undefined },
    ],
    start: () => undefined,
    stop: async () => undefined,
    status: () => ({ registration_id: registrationId, log_lines: logLines }),
  };
};
