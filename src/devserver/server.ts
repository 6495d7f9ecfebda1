/**
 * A local device server speaking Kolide's JSON-RPC protocol (docs/protocol/device.md#server-side)
 * over HTTP or HTTPS on 127.0.0.1, with SQLite storage, admin endpoints,
 * a function API, fault knobs and per-method counters. `launcher dev-server`
 * and tests start it with startDevServer().
 *
 * Server behaviour: `POST /` only (other methods 405), chunked request
 * bodies rejected with 400 (as the Rails backend), decode failures are
 * JSON-RPC error -32000 with HTTP 200, responses carry `"jsonrpc":"2.0"` and
 * echo the request id.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { LauncherError, errorMessage } from '../errors.js';
import { openDatabase, type SqliteDatabase } from '../store/database.js';
import { handleAdmin } from './admin.js';
import { bearerMatches, generateAdminToken } from './admin-token.js';
import { FaultSwitch, type Fault } from './faults.js';
import { BodyTooLargeError, isChunked, readBody, send, sendJson } from './http-io.js';
import { DECODE_ERROR, METHOD_NOT_FOUND, RPC_METHODS, handleRpc, isRpcMethod, type RpcMethod, type RpcOutcome } from './rpc.js';
import {
  DevServerStore,
  type LogFilter,
  type NodeRecord,
  type ResultFilter,
  type StoredLog,
  type StoredResult,
  type TenantSpec,
} from './store.js';

export interface DevServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** SQLite file; default in memory. Ignored when `db` is given. */
  dbPath?: string;
  db?: SqliteDatabase;
  tenants?: TenantSpec[];
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Largest request body (bytes). Default 64 MiB. */
  maxBodyBytes?: number;
  /** How many raw requests to keep for inspection. Default 200. */
  recordRequests?: number;
  /**
   * Token every `/admin/...` request must send as `Authorization: Bearer <token>`
   * (admin-token.ts). Default: a fresh random one, readable as `adminToken`.
   */
  adminToken?: string;
  logger?: Logger;
}

export interface RecordedRequest {
  httpMethod: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Header names as sent, in order. */
  rawHeaderNames: string[];
  body: Buffer;
  /** The JSON-RPC method, when the body named a known one. */
  rpcMethod: string | undefined;
  receivedAt: number;
}

export interface DevServerStats {
  /** Requests per JSON-RPC method (received, faults included). */
  calls: Record<RpcMethod, number>;
  /** Requests per method answered with a result. */
  served: Record<RpcMethod, number>;
  rpcRequests: number;
  rpcErrors: number;
  rejectedChunked: number;
  faultsInjected: number;
  /** JSON-RPC requests received and not answered yet. */
  inFlight: number;
  inFlightByMethod: Record<RpcMethod, number>;
  fault: Fault | undefined;
  /** Log lines and query results stored so far. */
  stored: { logs: number; results: number };
}

function zeroCounts(): Record<RpcMethod, number> {
  return Object.fromEntries(RPC_METHODS.map((m) => [m, 0])) as Record<RpcMethod, number>;
}

export class DevServer {
  readonly store: DevServerStore;
  readonly tls: boolean;
  /** What `/admin/...` requests must present; a secret: never log it. */
  readonly adminToken: string;
  private readonly server: http.Server;
  private readonly ownsDb: boolean;
  private readonly maxBody: number;
  private readonly keep: number;
  private readonly log: Logger;
  private readonly faults = new FaultSwitch();
  private readonly sockets = new Set<Socket>();
  private readonly recorded: RecordedRequest[] = [];
  private readonly counters = {
    calls: zeroCounts(),
    served: zeroCounts(),
    inFlightByMethod: zeroCounts(),
    rpcRequests: 0,
    rpcErrors: 0,
    rejectedChunked: 0,
    inFlight: 0,
  };
  private _port = 0;
  private host: string;
  private closing: Promise<void> | undefined;

  constructor(options: DevServerOptions = {}) {
    this.ownsDb = options.db === undefined;
    this.store = new DevServerStore(options.db ?? openDatabase(options.dbPath ?? ':memory:'));
    for (const t of options.tenants ?? []) this.store.upsertTenant(t);
    this.maxBody = options.maxBodyBytes ?? 64 * 1024 * 1024;
    this.keep = options.recordRequests ?? 200;
    this.log = (options.logger ?? silentLogger()).child({ component: 'devserver' });
    this.host = options.host ?? '127.0.0.1';
    this.tls = options.tls !== undefined;
    if (options.adminToken !== undefined && options.adminToken.length < 16)
      throw new LauncherError('E_CONFIG', `dev server admin token is too short (${options.adminToken.length} characters, at least 16)`);
    this.adminToken = options.adminToken ?? generateAdminToken();
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.route(req, res).catch((err: unknown) => {
        this.log.error({ err: errorMessage(err) }, 'dev server request failed');
        send(res, 500, 'internal error', 'text/plain');
      });
    };
    this.server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler) : http.createServer(handler);
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('tlsClientError', (err) => this.log.debug({ err: errorMessage(err) }, 'TLS client error'));
  }

  get port(): number {
    return this._port;
  }

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://${this.host}:${this._port}`;
  }

  async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) =>
        reject(new LauncherError('E_LAUNCH', `dev server cannot listen on ${this.host}:${port}: ${err.message}`, { cause: err }));
      this.server.once('error', onError);
      this.server.listen(port, this.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this._port = (this.server.address() as AddressInfo).port;
    this.log.info({ url: this.url }, 'dev server listening');
    if (!['127.0.0.1', '::1', 'localhost'].includes(this.host)) {
      this.log.warn(
        { host: this.host },
        'dev server listens beyond loopback: its device RPC has no authentication (admin endpoints need the token)',
      );
    }
  }

  /** Stop listening, drop every connection, close the database if we opened it. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const s of this.sockets) s.destroy();
      await closed;
      if (this.ownsDb) this.store.db.close();
    })();
    return this.closing;
  }

  // ---- function API -------------------------------------------------------

  addTenant(spec: TenantSpec): void {
    this.store.upsertTenant(spec);
  }

  setConfig(tenant: string, config: string | object): void {
    this.store.setConfig(tenant, typeof config === 'string' ? config : JSON.stringify(config));
  }

  /** Queue a distributed query for the tenant's nodes; returns its name. */
  addQuery(tenant: string, sql: string, name?: string): string {
    return this.store.addQuery(tenant, sql, name);
  }

  logs(filter: LogFilter = {}): StoredLog[] {
    return this.store.logs(filter);
  }

  results(filter: ResultFilter = {}): StoredResult[] {
    return this.store.results(filter);
  }

  nodes(tenant?: string): NodeRecord[] {
    return this.store.nodes(tenant);
  }

  revokeNodeKeys(filter: { tenant?: string; nodeKey?: string } = {}): number {
    return this.store.revoke(filter);
  }

  setDisabled(tenant: string, disabled: boolean): void {
    this.store.setDisabled(tenant, disabled);
  }

  /** Inject a fault (undefined clears it). */
  setFault(fault: Fault | undefined): void {
    this.faults.set(fault);
    this.log.info({ fault }, 'fault set');
  }

  stats(): DevServerStats {
    return {
      calls: { ...this.counters.calls },
      served: { ...this.counters.served },
      inFlightByMethod: { ...this.counters.inFlightByMethod },
      rpcRequests: this.counters.rpcRequests,
      rpcErrors: this.counters.rpcErrors,
      rejectedChunked: this.counters.rejectedChunked,
      faultsInjected: this.faults.injected,
      inFlight: this.counters.inFlight,
      fault: this.faults.current,
      stored: { logs: this.store.logCount(), results: this.store.resultCount() },
    };
  }

  /** The last raw requests to `/`, oldest first. */
  requests(): RecordedRequest[] {
    return [...this.recorded];
  }

  clearRequests(): void {
    this.recorded.length = 0;
  }

  // ---- HTTP ---------------------------------------------------------------

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://devserver');
    if (url.pathname === '/') {
      if (req.method !== 'POST') {
        res.setHeader('Allow', 'POST');
        send(res, 405, 'method not allowed\n', 'text/plain');
        return;
      }
      return this.serveRpc(req, res);
    }
    if (url.pathname.startsWith('/admin/')) {
      if (!bearerMatches(req.headers.authorization, this.adminToken)) {
        // Checked before the body is read: an unauthenticated request changes nothing.
        res.setHeader('WWW-Authenticate', 'Bearer realm="devserver-admin"');
        sendJson(res, 401, { error: 'admin endpoints need Authorization: Bearer <token> (the dev server admin token file)' });
        req.resume();
        return;
      }
      // Admin endpoints accept chunked bodies too (curl, scripts).
      const body = await readBody(req, this.maxBody).catch((err: unknown) => {
        send(res, 413, errorMessage(err), 'text/plain');
        return undefined;
      });
      if (body) handleAdmin(this, req, res, url, body);
      return;
    }
    send(res, 404, 'not found\n', 'text/plain');
  }

  private record(req: IncomingMessage, body: Buffer, rpcMethod: string | undefined): void {
    if (this.keep <= 0) return;
    const rawHeaderNames = req.rawHeaders.filter((_, i) => i % 2 === 0);
    this.recorded.push({
      httpMethod: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      rawHeaderNames,
      body,
      rpcMethod,
      receivedAt: Date.now(),
    });
    if (this.recorded.length > this.keep) this.recorded.splice(0, this.recorded.length - this.keep);
  }

  private async serveRpc(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (isChunked(req)) {
      this.counters.rejectedChunked++;
      send(res, 400, 'chunked request bodies are not accepted; send Content-Length\n', 'text/plain');
      req.resume();
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req, this.maxBody);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        send(res, 413, `${err.message}\n`, 'text/plain');
        req.socket.destroySoon();
        return;
      }
      throw err;
    }
    this.counters.rpcRequests++;
    let request: { method?: unknown; params?: unknown; id?: unknown };
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('request is not a JSON object');
      request = parsed as typeof request;
    } catch (err) {
      this.record(req, body, undefined);
      return this.reply(res, null, { error: { code: DECODE_ERROR, message: `decode request: ${errorMessage(err)}` } });
    }
    const id = request.id ?? null;
    const method = request.method;
    this.record(req, body, isRpcMethod(method) ? method : undefined);
    if (!isRpcMethod(method)) {
      return this.reply(res, id, { error: { code: METHOD_NOT_FOUND, message: `method ${JSON.stringify(method)} was not found` } });
    }
    this.counters.calls[method]++;
    this.counters.inFlight++;
    this.counters.inFlightByMethod[method]++;
    try {
      const fault = this.faults.take(method);
      if (fault && (await this.applyFault(fault, req, res, id))) return;
      const outcome = handleRpc(this.store, method, request.params);
      if ('result' in outcome) this.counters.served[method]++;
      this.reply(res, id, outcome);
    } finally {
      this.counters.inFlight--;
      this.counters.inFlightByMethod[method]--;
    }
  }

  private reply(res: ServerResponse, id: unknown, outcome: RpcOutcome): void {
    if ('error' in outcome) this.counters.rpcErrors++;
    sendJson(res, 200, { jsonrpc: '2.0', id, ...outcome });
  }

  /** Apply a fault; true when the request is fully handled by it. */
  private async applyFault(fault: Fault, req: IncomingMessage, res: ServerResponse, id: unknown): Promise<boolean> {
    switch (fault.mode) {
      case 'down':
        req.socket.destroy();
        return true;
      case 'hang':
        await new Promise<void>((resolve) => res.on('close', () => resolve()));
        return true;
      case 'slow': {
        const clientLeft = await new Promise<boolean>((resolve) => {
          const onClose = () => {
            clearTimeout(timer);
            resolve(true);
          };
          const timer = setTimeout(() => {
            res.off('close', onClose);
            resolve(false);
          }, fault.delayMs ?? 1_000);
          res.once('close', onClose);
        });
        // A client that gave up never sees the request processed.
        return clientLeft || res.destroyed;
      }
      case 'http500':
        send(res, 500, '<html><body><h1>500 Internal Server Error</h1></body></html>\n', 'text/html');
        return true;
      case 'garbage':
        send(res, 200, '<html>this is not JSON</html>\n', 'text/html');
        return true;
      case 'rpc-error':
        this.reply(res, id, { error: { code: -32603, message: 'injected failure' } });
        return true;
      case 'err-field':
        sendJson(res, 200, { jsonrpc: '2.0', id, result: { node_invalid: false, disable_device: false, err: 'injected err' } });
        return true;
      case 'wrong-types':
        sendJson(res, 200, { jsonrpc: '2.0', id, result: { node_key: 42, config: 7, message: [], node_invalid: 'no', disable_device: 0 } });
        return true;
      case 'huge': {
        const size = fault.sizeBytes ?? 20 * 1024 * 1024;
        send(res, 200, `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"message":"${'x'.repeat(size)}"}}`);
        return true;
      }
    }
  }
}

/** Create, listen and return a dev server. */
export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const server = new DevServer(options);
  try {
    await server.listen(options.port ?? 0);
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}
