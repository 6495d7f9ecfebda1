/**
 * The metrics endpoint: `GET /metrics` (Prometheus text exposition) on a
 * loopback TCP port or a Unix socket (mode 0600). No authentication: that is
 * why TCP is loopback only and the socket is private to the launcher's user.
 * Bounded against misbehaving scrapers: few connections, short header,
 * request and idle timeouts, no request bodies read, concurrent scrapes share
 * one collection (prometheus.ts).
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { isAbsolute } from 'node:path';
import { LauncherError, errorMessage } from '../errors.js';

export type MetricsListen = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** sun_path holds 108 bytes on Linux (104 on macOS), NUL included. */
const MAX_SOCKET_PATH_BYTES = 103;

const problem = (listen: string, why: string) => new LauncherError('E_CONFIG', `metrics.listen ${JSON.stringify(listen)}: ${why}`);

/** `127.0.0.1:PORT`, `[::1]:PORT`, `localhost:PORT` (port 0: any free one) or `unix:///abs/path`. */
export function parseMetricsListen(listen: string): MetricsListen {
  if (listen.startsWith('unix:')) {
    const path = listen.replace(/^unix:(\/\/)?/, '');
    if (!isAbsolute(path)) throw problem(listen, 'the socket path must be absolute (unix:///path)');
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES)
      throw problem(listen, `the socket path is longer than ${MAX_SOCKET_PATH_BYTES} bytes`);
    return { kind: 'unix', path };
  }
  const m = /^(\[::1\]|localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65_535)
    throw problem(listen, 'expected a loopback address 127.0.0.1:PORT (the endpoint has no authentication) or unix:///path');
  return { kind: 'tcp', host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

export interface MetricsServer {
  /** `http://127.0.0.1:PORT/metrics` or `unix:///path`. */
  readonly url: string;
  readonly port: number | undefined;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  listen: string;
  render(): Promise<{ contentType: string; body: string }>;
  /** A scrape that failed (a collector threw); the scraper gets a 500 without details. */
  onError?(err: unknown): void;
}

function isServed(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function clearStale(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new LauncherError('E_CONFIG', `metrics socket path ${path} exists and is not a socket; not removing it`);
  if (await isServed(path)) throw new LauncherError('E_CONFIG', `another process already serves the metrics socket ${path}`);
  unlinkSync(path);
}

export async function startMetricsServer(o: MetricsServerOptions): Promise<MetricsServer> {
  const listen = parseMetricsListen(o.listen);
  if (listen.kind === 'unix') await clearStale(listen.path);
  // Connections that arrive before the socket file is 0600 are dropped: nobody else gets in through the window.
  let open = listen.kind === 'tcp';
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    o.render().then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        o.onError?.(err);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('metrics collection failed\n');
      },
    );
  };
  const server: Server = createServer(
    { requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000, maxHeaderSize: 8192 },
    handle,
  );
  server.maxConnections = 16;
  server.maxHeadersCount = 32;
  server.timeout = 30_000; // a scraper that stops reading is cut off
  server.on('connection', (socket: Socket) => {
    if (!open) socket.destroy();
  });
  server.on('clientError', (_err, socket: Socket) => socket.destroy());
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new LauncherError('E_CONFIG', `metrics endpoint cannot listen on ${o.listen}: ${errorMessage(err)}`, { cause: err })),
    );
    const done = (): void => {
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : 0);
    };
    if (listen.kind === 'unix') server.listen(listen.path, done);
    else server.listen(listen.port, listen.host, done);
  });
  if (listen.kind === 'unix') {
    try {
      chmodSync(listen.path, 0o600);
    } catch (err) {
      server.close();
      throw new LauncherError('E_CONFIG', `cannot make the metrics socket ${listen.path} private: ${errorMessage(err)}`, { cause: err });
    }
    open = true;
  }
  const host = listen.kind === 'tcp' && listen.host.includes(':') ? `[${listen.host}]` : listen.kind === 'tcp' ? listen.host : '';
  const url = listen.kind === 'unix' ? `unix://${listen.path}` : `http://${host}:${port}/metrics`;
  let closing: Promise<void> | undefined;
  return {
    url,
    port: listen.kind === 'tcp' ? port : undefined,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => {
          if (listen.kind === 'unix') {
            try {
              unlinkSync(listen.path);
            } catch {
              // already gone
            }
          }
          resolve();
        });
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
