/**
 * The `launcher.v1.Launcher` handlers: identify the caller, validate the
 * request, authorize it, call the ControlTarget, map the result. Every denied
 * call is logged at warn with subject and method; mutations are logged at
 * info (an audit trail); enroll secrets are never logged.
 */
import * as grpc from '@grpc/grpc-js';
import { LauncherError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { type Authorizer, formatRole, type Access, type AuthenticatedCall, type Caller } from './authz.js';
import { API_VERSION, SERVER_FEATURES } from './features.js';
import type { LauncherHandlers } from './gen/launcher/v1/Launcher.js';
import type { OutputLine } from './gen/launcher/v1/OutputLine.js';
import type { StreamOutputRequest__Output } from './gen/launcher/v1/StreamOutputRequest.js';
import {
  fromAddRegistrationMessage,
  toHealthMessage,
  toInstanceMessage,
  toOutputLineMessage,
  toRowMessages,
  toRunMessage,
} from './mapping.js';
import { toQuarantineMessage } from './quarantine-mapping.js';
import { RpcStatusError, statusOf, toServiceError } from './status.js';
import type { ControlTarget, InstanceInfo, UpdateControl } from './target.js';
import { toUpdateStatusMessage } from './update-mapping.js';
import { StreamQuota, type StreamQuotaOptions } from './stream-quota.js';
import * as validate from './validate.js';
import type { RegistrationId } from '../registration.js';

export interface ServiceOptions {
  target: ControlTarget;
  authorizer: Authorizer;
  logger: Logger;
  /** Concurrent StreamOutput calls: total, per tenant caller, reserved for admin (stream-quota.ts). */
  streams?: StreamQuotaOptions;
}

export interface LauncherService {
  handlers: LauncherHandlers;
  /** End every open output stream (server shutdown). */
  closeStreams(): void;
}

const SHUTDOWN = Symbol('shutdown');

/** Resolves when the stream can take more data or the signal aborts; leaves no listener behind. */
function drainOrAbort(stream: NodeJS.EventEmitter, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    stream.on('drain', done);
    signal.addEventListener('abort', done);
  });
}

export function createLauncherService(options: ServiceOptions): LauncherService {
  const { target, authorizer, logger } = options;
  const quota = new StreamQuota(options.streams);
  const streams = new Set<AbortController>();

  function logDenied(method: string, subject: string | undefined, caller: Caller | undefined, err: unknown): void {
    logger.warn(
      { subject: subject ?? null, role: caller ? formatRole(caller.role) : null, method, reason: statusOf(err).details },
      'control call denied',
    );
  }

  /** Who is calling: first step of every method, before any validation (unknown subjects learn nothing). */
  function identify(method: string, call: AuthenticatedCall): Caller {
    let subject: string | undefined;
    try {
      subject = authorizer.subject(call);
      return authorizer.caller(subject);
    } catch (err) {
      logDenied(method, subject, undefined, err);
      throw err;
    }
  }

  function authorize(method: string, caller: Caller, access: Access): void {
    try {
      authorizer.check(caller, access);
    } catch (err) {
      logDenied(method, caller.subject, caller, err);
      throw err;
    }
  }

  /** identify + authorize a call on one registration; validates the id in between. */
  function admitRegistration(
    method: string,
    call: AuthenticatedCall,
    rawId: string,
    field: string,
  ): { caller: Caller; id: RegistrationId } {
    const caller = identify(method, call);
    const id = validate.registrationId(rawId, field);
    authorize(method, caller, { kind: 'registration', registrationId: id });
    return { caller, id };
  }

  function fail(method: string, err: unknown): Partial<grpc.ServiceError> {
    const status = statusOf(err);
    if (status.unexpected) logger.error({ err, method }, 'control call failed');
    return toServiceError(status);
  }

  /** A unary handler around `fn`, with errors mapped to statuses. */
  function unary<Req, Res>(
    method: string,
    fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      Promise.resolve()
        .then(() => fn(call.request, call))
        .then(
          (res) => callback(null, res),
          (err: unknown) => callback(fail(method, err)),
        );
    };
  }

  function requireInstance(id: RegistrationId): InstanceInfo {
    const info = target.getInstance(id);
    if (!info) throw new LauncherError('E_NOT_FOUND', `registration '${id}' does not exist`);
    return info;
  }

  const handlers: LauncherHandlers = {
    GetVersion: unary('GetVersion', (_req, call) => {
      const caller = identify('GetVersion', call);
      const v = target.version();
      const features = [...new Set([...SERVER_FEATURES, ...v.features])];
      return {
        server_version: v.serverVersion,
        api_version: API_VERSION,
        features,
        caller_subject: caller.subject,
        caller_role: formatRole(caller.role),
      };
    }),

    Health: unary('Health', (_req, call) => {
      const caller = identify('Health', call);
      const health = target.health();
      if (caller.role.kind === 'admin') return toHealthMessage(health);
      // A tenant learns nothing about other registrations: healthy means "my instance is healthy".
      const own = health.instances.filter((i) => authorizer.canSee(caller, i.id));
      return toHealthMessage({ healthy: own.length > 0 && own.every((i) => i.healthy), instances: own });
    }),

    ListInstances: unary('ListInstances', (_req, call) => {
      const caller = identify('ListInstances', call);
      const visible = target.listInstances().filter((i) => authorizer.canSee(caller, i.id));
      return { instances: visible.map(toInstanceMessage) };
    }),

    GetInstance: unary('GetInstance', (req, call) => {
      const { id } = admitRegistration('GetInstance', call, req.id, 'id');
      return { instance: toInstanceMessage(requireInstance(id)) };
    }),

    AddRegistration: unary('AddRegistration', async (req, call) => {
      const caller = identify('AddRegistration', call);
      authorize('AddRegistration', caller, { kind: 'admin' });
      const input = validate.addRegistration(fromAddRegistrationMessage(req));
      logger.info({ subject: caller.subject, method: 'AddRegistration', registration_id: input.id }, 'adding registration');
      return { instance: toInstanceMessage(await target.addRegistration(input)) };
    }),

    RemoveRegistration: unary('RemoveRegistration', async (req, call) => {
      const caller = identify('RemoveRegistration', call);
      authorize('RemoveRegistration', caller, { kind: 'admin' });
      const id = validate.registrationId(req.id);
      logger.info({ subject: caller.subject, method: 'RemoveRegistration', registration_id: id }, 'removing registration');
      await target.removeRegistration(id);
      return {};
    }),

    RestartInstance: unary('RestartInstance', async (req, call) => {
      const { caller, id } = admitRegistration('RestartInstance', call, req.id, 'id');
      logger.info({ subject: caller.subject, method: 'RestartInstance', registration_id: id }, 'restarting instance');
      return { instance: toInstanceMessage(await target.restartInstance(id)) };
    }),

    Query: unary('Query', async (req, call) => {
      const { id } = admitRegistration('Query', call, req.registration_id, 'registration_id');
      const sql = validate.sql(req.sql);
      const timeoutMs = validate.queryTimeoutMs(req.timeout_ms);
      requireInstance(id);
      return { rows: toRowMessages(await target.query(id, sql, timeoutMs)) };
    }),

    GetHistory: unary('GetHistory', (req, call) => {
      const { id } = admitRegistration('GetHistory', call, req.registration_id, 'registration_id');
      const limit = validate.historyLimit(req.limit);
      requireInstance(id);
      return { runs: target.history(id, limit).map(toRunMessage) };
    }),

    ListQuarantine: unary('ListQuarantine', (req, call) => {
      if (req.registration_id !== '') {
        const { id } = admitRegistration('ListQuarantine', call, req.registration_id, 'registration_id');
        requireInstance(id);
        return { queries: target.listQuarantine([id]).map(toQuarantineMessage) };
      }
      const caller = identify('ListQuarantine', call);
      const ids = caller.role.kind === 'admin' ? undefined : [caller.role.registrationId];
      // Filtered again by owner: a tenant sees only its own entries, whatever the target returns.
      const visible = target.listQuarantine(ids).filter((q) => authorizer.canSee(caller, q.registration_id));
      return { queries: visible.map(toQuarantineMessage) };
    }),

    ReleaseQuarantine: unary('ReleaseQuarantine', async (req, call) => {
      const { caller, id } = admitRegistration('ReleaseQuarantine', call, req.registration_id, 'registration_id');
      const query = validate.quarantineQuery(req.query);
      requireInstance(id);
      logger.info({ subject: caller.subject, method: 'ReleaseQuarantine', registration_id: id }, 'releasing a quarantined query');
      return { released: (await target.releaseQuarantine(id, query)).map(toQuarantineMessage) };
    }),

    StreamOutput: (call) => {
      void streamOutput(call).catch((err: unknown) => {
        call.emit('error', fail('StreamOutput', err));
      });
    },

    // issue 17: osqueryd updates. Status is scoped like ListInstances; check, pin and unpin are admin-only
    // (a tenant holding its osqueryd back, or choosing the vendor's binary, is a host-wide decision).
    GetUpdateStatus: unary('GetUpdateStatus', (req, call) => {
      if (req.registration_id) {
        const { id } = admitRegistration('GetUpdateStatus', call, req.registration_id, 'registration_id');
        requireInstance(id);
        return toUpdateStatusMessage(updates().updateStatus([id]));
      }
      const caller = identify('GetUpdateStatus', call);
      const ids =
        caller.role.kind === 'admin'
          ? undefined
          : target
              .listInstances()
              .filter((i) => authorizer.canSee(caller, i.id))
              .map((i) => i.id);
      return toUpdateStatusMessage(updates().updateStatus(ids));
    }),

    CheckUpdate: unary('CheckUpdate', async (_req, call) => {
      const caller = identify('CheckUpdate', call);
      authorize('CheckUpdate', caller, { kind: 'admin' });
      logger.info({ subject: caller.subject, method: 'CheckUpdate' }, 'checking for an osqueryd update');
      return toUpdateStatusMessage(await updates().checkUpdate());
    }),

    PinVersion: unary('PinVersion', async (req, call) => {
      const caller = identify('PinVersion', call);
      authorize('PinVersion', caller, { kind: 'admin' });
      const id = validate.registrationId(req.registration_id, 'registration_id');
      requireInstance(id);
      logger.info({ subject: caller.subject, method: 'PinVersion', registration_id: id, version: req.version }, 'pinning osqueryd version');
      return toUpdateStatusMessage(await updates().pinVersion(id, req.version === '' ? undefined : req.version));
    }),

    UnpinVersion: unary('UnpinVersion', async (req, call) => {
      const caller = identify('UnpinVersion', call);
      authorize('UnpinVersion', caller, { kind: 'admin' });
      const id = validate.registrationId(req.registration_id, 'registration_id');
      logger.info({ subject: caller.subject, method: 'UnpinVersion', registration_id: id }, 'unpinning osqueryd version');
      return toUpdateStatusMessage(await updates().unpinVersion(id));
    }),
  };

  function updates(): UpdateControl {
    if (!target.update) throw new LauncherError('E_UNSUPPORTED', 'this launcher has no osqueryd update service');
    return target.update;
  }

  async function streamOutput(call: grpc.ServerWritableStream<StreamOutputRequest__Output, OutputLine>): Promise<void> {
    const req = call.request;
    const { caller, id } = admitRegistration('StreamOutput', call, req.registration_id, 'registration_id');
    requireInstance(id);
    const source = target.output(id);
    if (!source)
      throw new RpcStatusError(grpc.status.FAILED_PRECONDITION, `registration '${id}' has no osqueryd output yet (no run has started)`);
    let release: () => void;
    try {
      release = quota.acquire(caller);
    } catch (err) {
      logger.warn(
        { subject: caller.subject, method: 'StreamOutput', open: quota.inUse, reason: statusOf(err).details },
        'output stream refused',
      );
      throw err;
    }
    const abort = new AbortController();
    streams.add(abort);
    const onCancel = (): void => abort.abort();
    call.on('cancelled', onCancel);
    call.on('close', onCancel);
    try {
      const lines = source.subscribe({ from: req.from_beginning ? 'beginning' : 'now', follow: req.follow, signal: abort.signal });
      for await (const line of lines) {
        if (abort.signal.aborted) break;
        // Respect the client's flow control: while it is not reading, we do
        // not read the ring either, and it is told what it missed later.
        if (!call.write(toOutputLineMessage(line, source.runId))) {
          await drainOrAbort(call, abort.signal);
        }
      }
      if (call.cancelled) return;
      if (abort.signal.reason === SHUTDOWN) {
        throw new RpcStatusError(grpc.status.UNAVAILABLE, 'the launcher control server is shutting down');
      }
      call.end();
    } finally {
      release();
      streams.delete(abort);
      call.off('cancelled', onCancel);
      call.off('close', onCancel);
    }
  }

  return {
    handlers,
    closeStreams(): void {
      for (const abort of streams) abort.abort(SHUTDOWN);
    },
  };
}
