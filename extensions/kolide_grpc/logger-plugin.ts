/**
 * The `kolide_grpc` logger plugin (docs/protocol/device.md#logger-plugin): `string` and
 * `snapshot` logs go to the registration's result buffer, each status log of
 * a batch to its status buffer as one entry (the element's raw JSON text).
 * osqueryd gets its answer only after the append committed (group commit).
 *
 * An append that cannot commit (disk full, database read-only) is refused:
 * osqueryd is answered with the error (it drops what it cannot log), the
 * extension's status keeps it as `lastError` (operation `log_buffer`), and
 * the log says so once when refusing starts and once when it ends, not once
 * per refused log (issue 9: a full disk made refused logs invisible).
 */
import { LoggerFeatures, type LoggerPlugin, type ResultLogKind, type StatusLog } from '../../src/osquery/plugins.js';
import { LauncherError, errorMessage } from '../../src/errors.js';
import type { LogAppend } from '../../src/store/log-buffer.js';
import type { LogAppendQueue } from '../../src/store/log-append-queue.js';
import type { ExtensionContext } from './context.js';

export function createLoggerPlugin(ctx: ExtensionContext, appender: LogAppendQueue): LoggerPlugin {
  const registrationId = ctx.opts.registrationId;
  /** Logs refused since the last successful append. */
  let refused = 0;
  const refuse = (err: unknown, n: number): never => {
    ctx.state.recordError('log_buffer', err);
    if (refused === 0) ctx.log.error({ err: errorMessage(err) }, 'cannot buffer logs; refusing them until the buffer is writable again');
    refused += n;
    throw new LauncherError('E_STORE', `kolide_grpc ${registrationId}: cannot buffer ${n} log(s): ${errorMessage(err)}`, {
      cause: err,
    });
  };
  const appended = (): void => {
    if (refused > 0) {
      ctx.log.warn({ refused }, 'log buffer writable again; logs refused meanwhile were dropped by osqueryd');
      refused = 0;
    }
  };
  // The commit's promise with one step after it, not a chain of async functions (issue 14).
  const append = (entries: LogAppend[]): Promise<void> =>
    appender.append(entries).then(appended, (err: unknown) => refuse(err, entries.length));
  return {
    kind: 'logger',
    name: 'kolide_grpc',
    features: LoggerFeatures.STATUS,
    init(): void {
      // Launcher ignores init.
    },
    logString(text: string, kind: ResultLogKind): Promise<void> {
      if (kind === 'event')
        return Promise.reject(new LauncherError('E_INVALID_ARGUMENT', 'kolide_grpc logger: event logs are not supported'));
      return append([{ registrationId, kind: 'result', data: text }]);
    },
    logStatus(_entries: StatusLog[], raw: string[]): Promise<void> {
      return append(raw.map((data) => ({ registrationId, kind: 'status' as const, data })));
    },
  };
}
