/**
 * The client against misbehaving HTTP servers on 127.0.0.1: bad bodies are
 * rejected cleanly (not retried), transport failures and 5xx are retried a
 * bounded number of times, oversize bodies are cut off, calls can be
 * aborted, and the concurrency limit holds.
 */
import http from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceClient, type DeviceClientOptions } from '../../src/device/index.js';
import { waitFor } from '../helpers/tmp.js';
import { rawReply, rejection, rpcResult, startCaptureServer, type CaptureServer, type Responder } from './support.js';

const servers: CaptureServer[] = [];
const clients: DeviceClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
});

async function setup(
  respond: Responder,
  options: Partial<DeviceClientOptions> = {},
): Promise<{ server: CaptureServer; client: DeviceClient }> {
  const server = await startCaptureServer(respond);
  servers.push(server);
  const client = new DeviceClient({
    serverUrl: server.url,
    insecureTransport: true,
    maxAttempts: 3,
    backoff: { baseMs: 5, maxMs: 20 },
    ...options,
  });
  clients.push(client);
  return { server, client };
}

describe('device client over HTTP', () => {
  it('rejects a garbage body without retrying', async () => {
    const { server, client } = await setup(rawReply(200, '<html>oops</html>', { 'Content-Type': 'text/html' }));
    const e = await rejection(client.requestConfig('k'));
    expect(e.code).toBe('E_DEVICE_RESPONSE');
    expect(e.message).toMatch(/not JSON/);
    expect(server.requests).toHaveLength(1);
    expect(client.stats()).toMatchObject({ calls: 1, failures: 1, retries: 0 });
  });

  it('rejects wrong-typed results, non-null err and JSON-RPC errors without retrying', async () => {
    const { server, client } = await setup(rpcResult({ node_invalid: 'yes' }));
    expect((await rejection(client.publishLogs('k', 0, ['x']))).code).toBe('E_DEVICE_RESPONSE');
    server.respond = rpcResult({ message: 'ok', err: 'something' });
    expect((await rejection(client.publishLogs('k', 0, ['x']))).code).toBe('E_DEVICE_RESPONSE');
    server.respond = rawReply(200, '{"jsonrpc":"2.0","id":0,"error":{"code":-32000,"message":"bad"}}');
    const e = await rejection(client.publishLogs('k', 0, ['x']));
    expect(e.code).toBe('E_DEVICE_REJECTED');
    expect(server.requests).toHaveLength(3);
  });

  it('ignores the HTTP status below 500 and decodes the body', async () => {
    const { client } = await setup(rawReply(404, '{"result":{"config":"{}"}}'));
    expect((await client.requestConfig('k')).config).toBe('{}');
  });

  it('retries HTTP 5xx with backoff, then succeeds', async () => {
    let n = 0;
    const { server, client } = await setup((req, res) => {
      if (n++ < 2) return rawReply(502, '<html>Bad Gateway</html>', { 'Content-Type': 'text/html' })(req, res);
      return rpcResult({ config: 'ok' })(req, res);
    });
    expect((await client.requestConfig('k')).config).toBe('ok');
    expect(server.requests).toHaveLength(3);
    expect(client.stats()).toMatchObject({ calls: 1, failures: 0, retries: 2, requests: 3 });
  });

  it('gives up after maxAttempts on persistent 5xx', async () => {
    const { server, client } = await setup(rawReply(503, 'unavailable'));
    const e = await rejection(client.requestConfig('k'));
    expect(e.code).toBe('E_DEVICE_TRANSPORT');
    expect(e.httpStatus).toBe(503);
    expect(e.attempts).toBe(3);
    expect(server.requests).toHaveLength(3);
  });

  it('retries a dropped connection', async () => {
    let n = 0;
    const { client } = await setup((req, res) => {
      if (n++ === 0) {
        res.socket?.destroy();
        return;
      }
      rpcResult({ config: 'after-reset' })(req, res);
    });
    expect((await client.requestConfig('k')).config).toBe('after-reset');
  });

  it('fails with E_DEVICE_TRANSPORT when nothing listens', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const client = new DeviceClient({
      serverUrl: `http://127.0.0.1:${port}`,
      insecureTransport: true,
      maxAttempts: 2,
      backoff: { baseMs: 1, maxMs: 2 },
    });
    clients.push(client);
    const e = await rejection(client.checkHealth());
    expect(e.code).toBe('E_DEVICE_TRANSPORT');
    expect(e.attempts).toBe(2);
    expect(e.message).toContain('ECONNREFUSED');
  });

  it('survives a peer that does not speak HTTP', async () => {
    const tcp = net.createServer((sock) => {
      sock.on('data', () => sock.end('SSH-2.0-OpenSSH_9.6\r\n\u0000\u0001garbage'));
      sock.on('error', () => undefined);
    });
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
    try {
      const client = new DeviceClient({
        serverUrl: `127.0.0.1:${(tcp.address() as AddressInfo).port}`,
        insecureTransport: true,
        maxAttempts: 2,
        backoff: { baseMs: 1, maxMs: 2 },
      });
      clients.push(client);
      const e = await rejection(client.requestConfig('k'));
      expect(e.code).toBe('E_DEVICE_TRANSPORT');
      expect(e.attempts).toBe(2);
    } finally {
      await new Promise<void>((r) => tcp.close(() => r()));
    }
  });

  it('times out a server that never answers', async () => {
    const { server, client } = await setup(() => undefined, { timeoutMs: 150, maxAttempts: 2 });
    const e = await rejection(client.requestConfig('k'));
    expect(e.code).toBe('E_TIMEOUT');
    expect(e.attempts).toBe(2);
    expect(server.requests).toHaveLength(2);
  });

  it('cuts off an oversize body with Content-Length and destroys the connection', async () => {
    const huge = Buffer.alloc(20 * 1024 * 1024, 0x20);
    let closed = false;
    const { client } = await setup((req, res) => {
      res.on('close', () => (closed = true));
      rawReply(200, huge)(req, res);
    });
    const e = await rejection(client.requestConfig('k'));
    expect(e.code).toBe('E_DEVICE_RESPONSE');
    expect(e.message).toMatch(/limit/);
    await waitFor(() => closed, 5_000, 'server-side close');
  });

  it('cuts off an oversize streamed body (no Content-Length)', async () => {
    const { client } = await setup(
      (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const pump = () => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
      },
      { maxResponseBytes: 1024 * 1024 },
    );
    const e = await rejection(client.requestConfig('k'));
    expect(e.code).toBe('E_DEVICE_RESPONSE');
    expect(e.message).toMatch(/exceeds the 1048576-byte limit/);
  });

  it('inflates gzip responses, and bounds a gzip bomb', async () => {
    const small = zlib.gzipSync(JSON.stringify({ result: { config: 'zipped' } }));
    const { server, client } = await setup(rawReply(200, small, { 'Content-Encoding': 'gzip' }), { maxResponseBytes: 1024 * 1024 });
    expect((await client.requestConfig('k')).config).toBe('zipped');
    expect(server.requests[0]!.headers['accept-encoding']).toBe('gzip');
    server.respond = rawReply(200, zlib.gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20)), { 'Content-Encoding': 'gzip' });
    const e = await rejection(client.requestConfig('k'));
    expect(e.code).toBe('E_DEVICE_RESPONSE');
    server.respond = rawReply(200, Buffer.from('not gzip at all'), { 'Content-Encoding': 'gzip' });
    expect((await rejection(client.requestConfig('k'))).code).toBe('E_DEVICE_RESPONSE');
  });

  it('aborts a call through its signal, and every call on close()', async () => {
    const { server, client } = await setup(() => undefined, { timeoutMs: 60_000 });
    const ac = new AbortController();
    const p = client.requestConfig('k', { signal: ac.signal });
    await waitFor(() => server.requests.length === 1, 5_000, 'request received');
    ac.abort();
    expect((await rejection(p)).code).toBe('E_SHUTDOWN');
    const q = client.requestQueries('k');
    await waitFor(() => server.requests.length === 2, 5_000, 'second request received');
    client.close();
    expect((await rejection(q)).code).toBe('E_SHUTDOWN');
    expect((await rejection(client.checkHealth())).code).toBe('E_SHUTDOWN');
    expect(client.stats()).toMatchObject({ calls: 3, aborted: 3, failures: 0 });
  });

  it('limits concurrent requests to the queue concurrency', async () => {
    const pending: Array<() => void> = [];
    const { server, client } = await setup(
      (req, res) => {
        pending.push(() => rpcResult({ message: 'ok' })(req, res));
      },
      { concurrency: 2 },
    );
    const calls = Array.from({ length: 5 }, (_, i) => client.publishLogs('k', 0, [`l${i}`]));
    await waitFor(() => server.requests.length === 2, 5_000, 'two requests in flight');
    expect(client.stats()).toMatchObject({ inFlight: 2, queued: 3 });
    let answered = 0;
    while (answered < 5) {
      await waitFor(() => pending.length > 0, 5_000, 'a request in flight');
      expect(server.requests.length - answered).toBeLessThanOrEqual(2);
      pending.shift()!();
      answered++;
    }
    await Promise.all(calls);
    expect(server.requests).toHaveLength(5);
  });

  it('refuses plain http unless insecureTransport is set, and URLs with paths', () => {
    expect(() => new DeviceClient({ serverUrl: 'http://127.0.0.1:1' })).toThrow(/insecureTransport/);
    expect(() => new DeviceClient({ serverUrl: 'https://example.com/api' })).toThrow(/POST \//);
    expect(new DeviceClient({ serverUrl: 'k2device.kolide.com' }).url.href).toBe('https://k2device.kolide.com/');
    expect(new DeviceClient({ serverUrl: '127.0.0.1:8080', insecureTransport: true }).url.href).toBe('http://127.0.0.1:8080/');
  });
});
