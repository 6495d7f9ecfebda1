/**
 * The standard gRPC health service, `grpc.health.v1.Health` (Check and
 * Watch), on the control API (issue 18, ADR 0019), beside launcher.v1 (which
 * is not touched). Service names:
 *   - `""`: the supervisor as a whole: SERVING when every registration the
 *     caller may see is running and healthy (a tenant sees only its own, as
 *     in launcher.v1 Health), NOT_SERVING otherwise;
 *   - `launcher.v1.Launcher`: the control API itself, SERVING while it runs;
 *   - `registration/<id>`: one registration, SERVING while its osqueryd runs
 *     and passes the health check, NOT_SERVING otherwise.
 * Check on an unknown name: NOT_FOUND (the standard's rule); Watch on one:
 * SERVICE_UNKNOWN, then updates if it appears. A tenant naming another
 * registration gets PERMISSION_DENIED whether it exists or not (authz.ts).
 * The protocol is described in docs/protocol/observability.md#grpc-health-v1;
 * its messages are defined here as a descriptor, so no .proto file ships.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LauncherError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { parseRegistrationId, type RegistrationId } from '../registration.js';
import { type Authorizer, type AuthenticatedCall, type Caller, formatRole } from './authz.js';
import { statusOf, toServiceError } from './status.js';
import { StreamQuota } from './stream-quota.js';
import type { ControlTarget } from './target.js';

export const HEALTH_SERVICE = 'grpc.health.v1.Health';
export const LAUNCHER_SERVICE = 'launcher.v1.Launcher';
export const REGISTRATION_SERVICE_PREFIX = 'registration/';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** grpc.health.v1 as a protobufjs JSON descriptor (field numbers and enum values are the standard's). */
const HEALTH_DESCRIPTOR = {
  nested: {
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: 'ServingStatus', id: 1 } },
                  nested: { ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } } },
                },
                Health: {
                  methods: {
                    Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' },
                    Watch: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse', responseStream: true },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

export interface HealthRequest {
  service: string;
}
export interface HealthResponse {
  status: ServingStatus;
}

type HealthCtor = grpc.ServiceClientConstructor & { service: grpc.ServiceDefinition };

let cached: HealthCtor | undefined;

/** The service definition and client constructor, built once. */
export function healthApi(): HealthCtor {
  if (!cached) {
    const definition = protoLoader.fromJSON(HEALTH_DESCRIPTOR as Parameters<typeof protoLoader.fromJSON>[0], {
      keepCase: true,
      enums: String,
      defaults: true,
    });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as { grpc: { health: { v1: { Health: HealthCtor } } } };
    cached = loaded.grpc.health.v1.Health;
  }
  return cached;
}

export interface HealthServiceOptions {
  target: ControlTarget;
  authorizer: Authorizer;
  logger: Logger;
  /** How often a Watch re-reads the status (default 1000 ms). */
  watchIntervalMs?: number;
  /** Concurrent Watch calls (default 64); more get RESOURCE_EXHAUSTED. */
  maxWatches?: number;
}

export interface HealthService {
  handlers: grpc.UntypedServiceImplementation;
  /** End every Watch (server shutdown). */
  closeStreams(): void;
}

export function createHealthService(o: HealthServiceOptions): HealthService {
  const { target, authorizer, logger } = o;
  const watches = new Set<() => void>();
  const maxWatches = o.maxWatches ?? 64;
  // Per caller, with slots kept for admin, as StreamOutput (issue 13): one tenant cannot take every Watch (review).
  const quota = new StreamQuota({
    total: maxWatches,
    perCaller: Math.min(16, maxWatches),
    adminReserve: Math.min(16, Math.floor(maxWatches / 4)),
  });
  // Watches re-read every second; one overall snapshot serves every caller for a moment (64 watches × 256 registrations).
  let overall: { at: number; info: ReturnType<ControlTarget['health']> } | undefined;
  const health = (): ReturnType<ControlTarget['health']> => {
    const now = Date.now();
    if (!overall || now - overall.at > 250) overall = { at: now, info: target.health() };
    return overall.info;
  };

  function identify(method: string, call: AuthenticatedCall): Caller {
    let subject: string | undefined;
    try {
      subject = authorizer.subject(call);
      return authorizer.caller(subject);
    } catch (err) {
      logger.warn({ subject: subject ?? null, role: null, method, reason: statusOf(err).details }, 'control call denied');
      throw err;
    }
  }

  /** The status of `service` for `caller`; throws NOT_FOUND / PERMISSION_DENIED. */
  function statusFor(method: string, caller: Caller, service: string): ServingStatus {
    if (service === LAUNCHER_SERVICE) return 'SERVING';
    if (service === '') {
      const visible = health().instances.filter((i) => authorizer.canSee(caller, i.id));
      if (caller.role.kind !== 'admin' && visible.length === 0) return 'NOT_SERVING';
      return visible.every((i) => i.healthy && i.state === 'running') ? 'SERVING' : 'NOT_SERVING';
    }
    if (!service.startsWith(REGISTRATION_SERVICE_PREFIX) || service.length > 200)
      throw new LauncherError('E_NOT_FOUND', `unknown health service ${JSON.stringify(service.slice(0, 80))}`);
    let id: RegistrationId;
    try {
      id = parseRegistrationId(service.slice(REGISTRATION_SERVICE_PREFIX.length));
    } catch {
      throw new LauncherError('E_NOT_FOUND', `unknown health service ${JSON.stringify(service.slice(0, 80))}`);
    }
    try {
      authorizer.check(caller, { kind: 'registration', registrationId: id });
    } catch (err) {
      logger.warn({ subject: caller.subject, role: formatRole(caller.role), method, reason: statusOf(err).details }, 'control call denied');
      throw err;
    }
    const info = target.getInstance(id);
    if (!info) throw new LauncherError('E_NOT_FOUND', `registration '${id}' does not exist`);
    return info.healthy && info.state === 'running' ? 'SERVING' : 'NOT_SERVING';
  }

  const handlers: grpc.UntypedServiceImplementation = {
    Check: ((call: grpc.ServerUnaryCall<HealthRequest, HealthResponse>, callback: grpc.sendUnaryData<HealthResponse>) => {
      try {
        const caller = identify('Health.Check', call);
        callback(null, { status: statusFor('Health.Check', caller, call.request.service ?? '') });
      } catch (err) {
        callback(toServiceError(statusOf(err)));
      }
    }) as grpc.handleUnaryCall<HealthRequest, HealthResponse>,

    Watch: ((call: grpc.ServerWritableStream<HealthRequest, HealthResponse>) => {
      let caller: Caller;
      let release: () => void;
      try {
        caller = identify('Health.Watch', call);
        release = quota.acquire(caller);
      } catch (err) {
        const s = statusOf(err);
        call.emit('error', toServiceError(isUnavailable(err) ? { ...s, code: grpc.status.RESOURCE_EXHAUSTED } : s));
        return;
      }
      const service = call.request.service ?? '';
      let last: ServingStatus | undefined;
      const tick = (): void => {
        let status: ServingStatus;
        try {
          status = statusFor('Health.Watch', caller, service);
        } catch (err) {
          const s = statusOf(err);
          if (s.code !== grpc.status.NOT_FOUND) {
            end();
            call.emit('error', toServiceError(s));
            return;
          }
          status = 'SERVICE_UNKNOWN';
        }
        if (status !== last) {
          last = status;
          call.write({ status });
        }
      };
      const timer = setInterval(tick, o.watchIntervalMs ?? 1000);
      const end = (): void => {
        clearInterval(timer);
        watches.delete(finish);
        release();
      };
      const finish = (): void => {
        end();
        call.end();
      };
      watches.add(finish);
      call.on('cancelled', end);
      call.on('close', end);
      tick();
    }) as grpc.handleServerStreamingCall<HealthRequest, HealthResponse>,
  };

  return {
    handlers,
    closeStreams() {
      for (const f of [...watches]) f();
    },
  };
}

function isUnavailable(err: unknown): boolean {
  return err instanceof LauncherError && err.code === 'E_UNAVAILABLE';
}
