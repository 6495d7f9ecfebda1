/**
 * The `kolide_grpc` logger plugin (reference §2.8 intake): `string` and
 * `snapshot` logs go to the registration's result buffer, each status log of
 * a batch to its status buffer as one entry (the element's raw JSON text).
 * osqueryd gets its answer only after the append committed (group commit).
 */
import { LoggerFeatures, type LoggerPlugin, type ResultLogKind, type StatusLog } from '../../src/osquery/plugins.js';
import { LauncherError } from '../../src/errors.js';
import type { LogAppendQueue } from '../../src/store/log-append-queue.js';
import type { ExtensionContext } from './context.js';

export function createLoggerPlugin(ctx: ExtensionContext, appender: LogAppendQueue): LoggerPlugin {
  const registrationId = ctx.opts.registrationId;
  return {
    kind: 'logger',
    name: 'kolide_grpc',
    features: LoggerFeatures.STATUS,
    init(): void {
      // Launcher ignores init.
    },
    async logString(text: string, kind: ResultLogKind): Promise<void> {
      if (kind === 'event') throw new LauncherError('E_INVALID_ARGUMENT', 'kolide_grpc logger: event logs are not supported');
      await appender.append([{ registrationId, kind: 'result', data: text }]);
    },
    async logStatus(_entries: StatusLog[], raw: string[]): Promise<void> {
      await appender.append(raw.map((data) => ({ registrationId, kind: 'status' as const, data })));
    },
  };
}
