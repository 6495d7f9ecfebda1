/**
 * The shared JSON-RPC client to the device server: one per supervisor, used
 * by every instance's extension. It holds no per-tenant state: the node key
 * and, when a registration was moved (wrong_region), its server URL are
 * arguments of each call. All requests go through one p-queue (concurrency
 * limit); each attempt has a timeout. A JSON-RPC body is decoded whatever the
 * HTTP status and its answer (result or error) is final; only calls that got
 * no answer (network failure, timeout, 5xx without a JSON-RPC body) are
 * retried, with exponential backoff and jitter, a bounded number of times
 * (ADR 0013). Responses are decoded strictly (decode.ts).
 */
import PQueue from 'p-queue';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { errorMessage, isLauncherError } from '../errors.js';
import { DEFAULT_BACKOFF, backoffDelay, sleep, type BackoffPolicy } from './backoff.js';
import { decodeResponse, hasRpcBody, previewBody, type ResultTypes } from './decode.js';
import { DeviceError } from './device-error.js';
import { encodeRequest, enrollmentParams, nodeKeyParams, publishLogsParams, publishResultsParams } from './encode.js';
import { isPostError, parseServerUrl, postJson, type PostTarget } from './http-post.js';
import { buildTlsOptions, type DeviceTlsConfig } from './tls.js';
import {
  DEVICE_METHODS,
  type ConfigResult,
  type DeviceMethod,
  type DistributedQueryResult,
  type EnrollmentParams,
  type EnrollmentResult,
  type HealthResult,
  type PublishResult,
  type QueriesResult,
} from './types.js';

export interface DeviceClientOptions extends DeviceTlsConfig {
  /** `https://host[:port]`, `http://host[:port]` (insecureTransport) or bare `host[:port]`. */
  serverUrl: string;
  /** Plain HTTP. Only when explicitly set. */
  insecureTransport?: boolean;
  /** Requests on the wire at once. Default 4. */
  concurrency?: number;
  /** Per-attempt timeout for the whole exchange (ms). Default 30 000. */
  timeoutMs?: number;
  /** Attempts per call, first one included. Default 3. */
  maxAttempts?: number;
  backoff?: BackoffPolicy;
  /** Largest response body accepted (bytes). Default 16 MiB. */
  maxResponseBytes?: number;
  /** Default `Go-http-client/1.1`, what launcher's Go client sends. */
  userAgent?: string;
  logger?: Logger;
  /**
   * Told once per logical call when it ends (metrics, issue 18): method, outcome (`ok`, `aborted` or the
   * error code) and seconds taken, queueing and retries included. Must be cheap and must not throw.
   */
  onCallEnd?: (method: DeviceMethod, outcome: string, seconds: number) => void;
}

export interface CallOptions {
  /** Abort waiting, the exchange and any backoff sleep. */
  signal?: AbortSignal;
  timeoutMs?: number;
  maxAttempts?: number;
  /** This call's server (a registration moved by wrong_region); default the configured one. Same rules as `serverUrl`. */
  serverUrl?: string;
}

export interface MethodStats {
  calls: number;
  failures: number;
}

export interface DeviceClientStats {
  url: string;
  /** Logical calls (retries excluded). */
  calls: number;
  /** Calls that failed after their last attempt. */
  failures: number;
  /** Calls aborted by their caller or by close(). */
  aborted: number;
  retries: number;
  /** HTTP requests sent (attempts). */
  requests: number;
  bytesSent: number;
  bytesReceived: number;
  inFlight: number;
  queued: number;
  lastError: string | undefined;
  byMethod: Record<DeviceMethod, MethodStats>;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Distinct per-call server URLs whose parsed target is kept (registrations moved to another region). */
const MAX_CACHED_TARGETS = 64;

export class DeviceClient {
  readonly url: URL;
  private readonly target: PostTarget;
  private readonly targets = new Map<string, PostTarget>();
  private readonly tlsConfig: DeviceTlsConfig;
  private readonly insecureTransport: boolean;
  private readonly userAgent: string;
  private readonly queue: PQueue;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoff: BackoffPolicy;
  private readonly maxResponseBytes: number;
  private readonly log: Logger;
  private readonly closer = new AbortController();
  private readonly nextIds = new Map<DeviceMethod, number>();
  private readonly counters: Omit<DeviceClientStats, 'url' | 'inFlight' | 'queued'>;
  private readonly onCallEnd: DeviceClientOptions['onCallEnd'];

  constructor(options: DeviceClientOptions) {
    const insecureTransport = options.insecureTransport === true;
    this.insecureTransport = insecureTransport;
    this.tlsConfig = {
      ...(options.rootPemPath !== undefined ? { rootPemPath: options.rootPemPath } : {}),
      ...(options.certPins ? { certPins: options.certPins } : {}),
      ...(options.insecure !== undefined ? { insecure: options.insecure } : {}),
    };
    this.userAgent = options.userAgent ?? 'Go-http-client/1.1';
    this.url = parseServerUrl(options.serverUrl, insecureTransport);
    this.target = this.makeTarget(this.url);
    this.queue = new PQueue({ concurrency: Math.max(1, options.concurrency ?? 4) });
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 3);
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.log = (options.logger ?? silentLogger()).child({ component: 'device-client' });
    this.onCallEnd = options.onCallEnd;
    const byMethod = Object.fromEntries(DEVICE_METHODS.map((m) => [m, { calls: 0, failures: 0 }])) as Record<DeviceMethod, MethodStats>;
    this.counters = {
      calls: 0,
      failures: 0,
      aborted: 0,
      retries: 0,
      requests: 0,
      bytesSent: 0,
      bytesReceived: 0,
      lastError: undefined,
      byMethod,
    };
  }

  requestEnrollment(params: EnrollmentParams, options?: CallOptions): Promise<EnrollmentResult> {
    return this.call('RequestEnrollment', enrollmentParams(params), options);
  }

  requestConfig(nodeKey: string, options?: CallOptions): Promise<ConfigResult> {
    return this.call('RequestConfig', nodeKeyParams(nodeKey), options);
  }

  /** `logType` is 0 (result logs: string and snapshot) or 4 (status logs). */
  publishLogs(nodeKey: string, logType: number, logs: readonly string[], options?: CallOptions): Promise<PublishResult> {
    return this.call('PublishLogs', publishLogsParams(nodeKey, logType, logs), options);
  }

  requestQueries(nodeKey: string, options?: CallOptions): Promise<QueriesResult> {
    return this.call('RequestQueries', nodeKeyParams(nodeKey), options);
  }

  publishResults(nodeKey: string, results: readonly DistributedQueryResult[], options?: CallOptions): Promise<PublishResult> {
    return this.call('PublishResults', publishResultsParams(nodeKey, results), options);
  }

  checkHealth(options?: CallOptions): Promise<HealthResult> {
    return this.call('CheckHealth', {}, options);
  }

  stats(): DeviceClientStats {
    const byMethod = Object.fromEntries(Object.entries(this.counters.byMethod).map(([m, s]) => [m, { ...s }])) as Record<
      DeviceMethod,
      MethodStats
    >;
    return { url: this.url.origin, ...this.counters, byMethod, inFlight: this.queue.pending, queued: this.queue.size };
  }

  get closed(): boolean {
    return this.closer.signal.aborted;
  }

  /** Abort every queued and in-flight call; later calls fail with E_SHUTDOWN. Idempotent. */
  close(): void {
    if (!this.closer.signal.aborted) this.closer.abort();
    this.queue.clear();
  }

  /**
   * Check a server URL with the client's own rules (scheme, insecureTransport,
   * no path); E_CONFIG with the reason otherwise. Used before a backend's
   * deployment URL is stored.
   */
  checkServerUrl(raw: string): string {
    return parseServerUrl(raw, this.insecureTransport).origin;
  }

  private makeTarget(url: URL): PostTarget {
    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    return { url, tls: url.protocol === 'https:' ? buildTlsOptions(this.tlsConfig, hostname) : undefined, userAgent: this.userAgent };
  }

  /** The target of one call: the configured server, or a registration's own (parsed once, cached). */
  private targetFor(serverUrl: string | undefined): PostTarget {
    if (serverUrl === undefined || serverUrl === '') return this.target;
    let target = this.targets.get(serverUrl);
    if (!target) {
      target = this.makeTarget(parseServerUrl(serverUrl, this.insecureTransport));
      if (target.url.origin === this.url.origin) target = this.target;
      if (this.targets.size >= MAX_CACHED_TARGETS) this.targets.delete(this.targets.keys().next().value!);
      this.targets.set(serverUrl, target);
    }
    return target;
  }

  private nextId(method: DeviceMethod): number {
    const id = this.nextIds.get(method) ?? 0;
    this.nextIds.set(method, id + 1);
    return id;
  }

  private async call<M extends DeviceMethod>(method: M, params: unknown, options: CallOptions = {}): Promise<ResultTypes[M]> {
    this.counters.calls++;
    this.counters.byMethod[method].calls++;
    // One controller per call, linked by hand (AbortSignal.any keeps long-lived sources' listeners around).
    const controller = new AbortController();
    const signal = controller.signal;
    const sources = [this.closer.signal, ...(options.signal ? [options.signal] : [])];
    const forward = () => controller.abort();
    for (const s of sources) {
      if (s.aborted) controller.abort();
      else s.addEventListener('abort', forward, { once: true });
    }
    const started = this.onCallEnd ? performance.now() : 0;
    let outcome = 'ok';
    try {
      return await this.run(method, params, options, signal);
    } catch (err) {
      outcome = err instanceof DeviceError ? (err.code === 'E_SHUTDOWN' ? 'aborted' : err.code) : 'E_INTERNAL';
      throw err;
    } finally {
      for (const s of sources) s.removeEventListener('abort', forward);
      this.onCallEnd?.(method, outcome, (performance.now() - started) / 1000);
    }
  }

  private async run<M extends DeviceMethod>(
    method: M,
    params: unknown,
    options: CallOptions,
    signal: AbortSignal,
  ): Promise<ResultTypes[M]> {
    const maxAttempts = Math.max(1, options.maxAttempts ?? this.maxAttempts);
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const aborted = () =>
      new DeviceError('E_SHUTDOWN', method, `${method}: aborted (${this.closed ? 'device client closed' : 'caller cancelled'})`);
    for (let attempt = 1; ; attempt++) {
      try {
        if (signal.aborted) throw aborted();
        const target = this.targetFor(options.serverUrl);
        const result = await this.queue
          .add(() => this.attempt(method, params, target, timeoutMs, signal), { signal })
          .catch((err: unknown) => {
            throw signal.aborted && !(err instanceof DeviceError) ? aborted() : err;
          });
        return result;
      } catch (err) {
        const failure =
          err instanceof DeviceError
            ? err
            : new DeviceError('E_DEVICE_TRANSPORT', method, `${method}: ${errorMessage(err)}`, { cause: err });
        failure.attempts = attempt;
        if (!failure.retryable || attempt >= maxAttempts || signal.aborted) {
          if (failure.code === 'E_SHUTDOWN') {
            this.counters.aborted++;
            throw failure;
          }
          this.counters.failures++;
          this.counters.byMethod[method].failures++;
          this.counters.lastError = failure.message;
          this.log.debug({ method, attempt, code: failure.code, err: failure.message }, 'device call failed');
          throw failure;
        }
        this.counters.retries++;
        const delay = backoffDelay(this.backoff, attempt);
        this.log.debug({ method, attempt, delay_ms: delay, err: failure.message }, 'device call failed; retrying');
        await sleep(delay, signal, aborted);
      }
    }
  }

  private async attempt<M extends DeviceMethod>(
    method: M,
    params: unknown,
    target: PostTarget,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<ResultTypes[M]> {
    const body = encodeRequest(method, params, this.nextId(method));
    this.counters.requests++;
    this.counters.bytesSent += body.length;
    let res;
    try {
      res = await postJson(target, body, { timeoutMs, maxResponseBytes: this.maxResponseBytes, signal });
    } catch (err) {
      throw this.transportError(method, err);
    }
    this.counters.bytesReceived += res.wireBytes;
    // Like launcher, the body is decoded whatever the HTTP status: a JSON-RPC
    // answer (result or error) is the backend's word and is never retried.
    // A 5xx without one (a proxy's HTML page) means no answer came: retried.
    if (res.status >= 500 && !hasRpcBody(res.body)) {
      throw new DeviceError(
        'E_DEVICE_TRANSPORT',
        method,
        `${method}: HTTP ${res.status} from ${target.url.origin} without a JSON-RPC body (${previewBody(res.body)})`,
        {
          retryable: true,
          httpStatus: res.status,
        },
      );
    }
    return decodeResponse(method, res.body, res.status);
  }

  private transportError(method: DeviceMethod, err: unknown): DeviceError {
    if (!isPostError(err)) {
      if (isLauncherError(err)) return new DeviceError(err.code, method, `${method}: ${err.message}`, { cause: err });
      return new DeviceError('E_DEVICE_TRANSPORT', method, `${method}: ${errorMessage(err)}`, { cause: err, retryable: true });
    }
    const message = `${method}: ${err.message}`;
    switch (err.kind) {
      case 'network':
        return new DeviceError('E_DEVICE_TRANSPORT', method, message, { cause: err, retryable: true });
      case 'timeout':
        return new DeviceError('E_TIMEOUT', method, message, { cause: err, retryable: true });
      case 'tls':
        return new DeviceError('E_TLS', method, message, { cause: err });
      case 'aborted':
        return new DeviceError('E_SHUTDOWN', method, message, { cause: err });
      case 'too-large':
      case 'bad-encoding':
        return new DeviceError('E_DEVICE_RESPONSE', method, message, { cause: err });
    }
  }
}
