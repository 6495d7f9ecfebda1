/**
 * The local control API server: gRPC over mutual TLS on a Unix socket (or a
 * TCP port), serving `launcher.v1.Launcher` for a ControlTarget.
 *
 *   const server = await startControlServer({
 *     target, listen: 'unix:///var/lib/launcher/control.sock',
 *     ca: 'tls/ca.pem', cert: 'tls/server.pem', key: 'tls/server.key',
 *     roles: { 'CN=admin': 'admin', 'CN=tenant-acme': 'tenant:acme' },
 *     logger,
 *   });
 *   ...
 *   await server.close();
 */
import type { Server as NetServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { LauncherError, errorMessage } from '../errors.js';
import { componentLogger, silentLogger, type Logger } from '../log/logger.js';
import { Authorizer } from './authz.js';
import { createHealthService, healthApi } from './health.js';
import { bindAddress, clearStaleSocket, isLoopback, parseListen, removeSocket, restrictSocket } from './listen.js';
import { launcherApi } from './proto.js';
import { createLauncherService } from './service.js';
import type { StreamQuotaOptions } from './stream-quota.js';
import type { ControlTarget } from './target.js';
import { startTlsFront } from './tls-front.js';
import { loadServerMaterial, type PemSource } from './tls.js';

export interface ControlServerOptions {
  target: ControlTarget;
  /** `unix:///abs/path` or `host:port` (port 0: any free port). See listen.ts defaultListen(). */
  listen: string;
  /** PEM contents or file paths. */
  ca: PemSource;
  cert: PemSource;
  key: PemSource;
  /** Certificate subject (`CN=<name>`) → `admin` | `tenant:<registration id>`. */
  roles: Record<string, string>;
  logger?: Logger;
  /** Unix socket permissions (default 0600). */
  socketMode?: 0o600 | 0o660;
  /** Concurrent StreamOutput calls: total (64), per tenant caller (16), kept for admin (16). */
  streams?: StreamQuotaOptions;
  /** Time close() gives in-flight calls before cutting them (default 2000 ms). */
  shutdownGraceMs?: number;
  /**
   * Told when each call ends (metrics, issue 18): `Service/Method` (only the served ones; anything else is
   * `unknown`) and the gRPC status code name. Must be cheap and must not throw.
   */
  onCallEnd?: (method: string, code: string) => void;
  /** How often a grpc.health.v1 Watch re-reads the status (default 1000 ms). */
  healthWatchIntervalMs?: number;
}

export interface ControlServer {
  /** What a client targets: `unix:///path` or `host:port` with the bound port. */
  readonly address: string;
  readonly port: number | undefined;
  readonly socketPath: string | undefined;
  close(): Promise<void>;
}

/** Requests are small (SQL is capped at 64 KiB); responses (query rows) may be large. */
const MAX_REQUEST_BYTES = 1024 * 1024;

function listenOn(server: NetServer, listen: ReturnType<typeof parseListen>): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : 0);
    };
    if (listen.kind === 'unix') server.listen(listen.path, done);
    else server.listen(listen.port, listen.host, done);
  });
}

/** Method names a call-metrics label may take: the served `Service/Method` paths. */
function servedMethods(): Set<string> {
  const names = new Set<string>();
  for (const def of [launcherApi().service, healthApi().service] as grpc.ServiceDefinition[])
    for (const m of Object.values(def)) names.add(m.path.replace(/^\/(?:[a-z0-9]+\.)*/, ''));
  return names;
}

/** A server interceptor that reports each call's method and final status code. */
function callObserver(onCallEnd: (method: string, code: string) => void): grpc.ServerInterceptor {
  const served = servedMethods();
  return (descriptor, call) => {
    const short = descriptor.path.replace(/^\/(?:[a-z0-9]+\.)*/, '');
    const method = served.has(short) ? short : 'unknown';
    return new grpc.ServerInterceptingCall(call, {
      sendStatus: (status, next) => {
        try {
          onCallEnd(method, grpc.status[status.code] ?? 'UNKNOWN');
        } catch {
          // metrics never fail a call
        }
        next(status);
      },
    });
  };
}

export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const logger = componentLogger(options.logger ?? silentLogger(), 'control');
  const listen = parseListen(options.listen);
  const material = loadServerMaterial({ ca: options.ca, cert: options.cert, key: options.key });
  const authorizer = new Authorizer(options.roles);
  const service = createLauncherService({ target: options.target, authorizer, logger, streams: options.streams });

  if (listen.kind === 'tcp' && !isLoopback(listen.host)) {
    logger.warn({ host: listen.host }, 'control API listening beyond loopback; only mutual TLS protects it');
  }
  if (listen.kind === 'unix') await clearStaleSocket(listen.path);

  const health = createHealthService({ target: options.target, authorizer, logger, watchIntervalMs: options.healthWatchIntervalMs });
  const interceptors = options.onCallEnd ? [callObserver(options.onCallEnd)] : [];
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_REQUEST_BYTES, interceptors });
  server.addService(launcherApi().service, service.handlers);
  // grpc.health.v1 (issue 18): a separate, standard service; launcher.v1 is unchanged.
  server.addService(healthApi().service, health.handlers);
  // TLS is terminated by tls-front.ts (so that rejected handshakes are seen and logged); grpc-js
  // serves HTTP/2 on each verified socket it is handed (ADR 0011).
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const front = startTlsFront(material, logger, (socket) => injector.injectConnection(socket));
  let port: number;
  try {
    port = await listenOn(front.server, listen);
  } catch (err) {
    front.close();
    server.forceShutdown();
    throw new LauncherError('E_CONFIG', `control server cannot listen on ${options.listen}: ${errorMessage(err)}`, { cause: err });
  }
  if (listen.kind === 'unix') restrictSocket(listen.path, options.socketMode ?? 0o600);

  const address = listen.kind === 'unix' ? `unix://${listen.path}` : bindAddress(listen, port);
  logger.info({ address, subjects: Object.keys(options.roles).length }, 'control API listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      service.closeStreams();
      health.closeStreams();
      front.server.close();
      const timer = setTimeout(() => server.forceShutdown(), options.shutdownGraceMs ?? 2_000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        front.close();
        if (listen.kind === 'unix') removeSocket(listen.path);
        logger.info({ address }, 'control API stopped');
        resolve();
      });
    });
    return closing;
  };

  return {
    address,
    port: listen.kind === 'tcp' ? port : undefined,
    socketPath: listen.kind === 'unix' ? listen.path : undefined,
    close,
  };
}
