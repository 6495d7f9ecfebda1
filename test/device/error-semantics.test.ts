/**
 * What the client does with each kind of answer (ADR 0013), against a
 * capturing HTTP server on 127.0.0.1: a JSON-RPC body is decoded on any HTTP
 * status and its answer is final (never retried); only "no answer" is retried
 * (connection refused, a 5xx without a JSON-RPC body), a bounded number of
 * times. And the per-call server URL a registration moved by wrong_region uses.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceClient, type DeviceClientOptions } from '../../src/device/index.js';
import { rawReply, rejection, rpcResult, startCaptureServer, type CaptureServer, type Responder } from './support.js';

const servers: CaptureServer[] = [];
const clients: DeviceClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
});

async function server(respond: Responder): Promise<CaptureServer> {
  const s = await startCaptureServer(respond);
  servers.push(s);
  return s;
}

function client(serverUrl: string, options: Partial<DeviceClientOptions> = {}): DeviceClient {
  const c = new DeviceClient({ serverUrl, insecureTransport: true, maxAttempts: 3, backoff: { baseMs: 5, maxMs: 20 }, ...options });
  clients.push(c);
  return c;
}

const rpcError = (status: number, code: number, message: string) =>
  rawReply(status, JSON.stringify({ jsonrpc: '2.0', id: 0, error: { code, message } }));

describe('device client error semantics (issue 15)', () => {
  // issue 15: a 500 carrying a JSON-RPC error was retried three times and reported only as "HTTP 500".
  it('surfaces the backend message of a JSON-RPC error on HTTP 500 and sends the call once', async () => {
    const s = await server(rpcError(500, -32000, 'enroll secret revoked for tenant acme'));
    const c = client(s.url);
    const e = await rejection(c.requestConfig('k'));
    expect(e.code).toBe('E_DEVICE_REJECTED');
    expect(e.message).toContain('enroll secret revoked for tenant acme');
    expect(e.message).toContain('HTTP 500');
    expect(e.httpStatus).toBe(500);
    expect(e.rpcCode).toBe(-32000);
    expect(s.requests).toHaveLength(1);
    expect(c.stats()).toMatchObject({ calls: 1, failures: 1, retries: 0, requests: 1 });
  });

  // issue 15: never retry when the backend answered with a JSON-RPC error, whatever the status.
  it.each([200, 400, 503])('never retries a JSON-RPC error answered with HTTP %i', async (status) => {
    const s = await server(rpcError(status, 42, 'no such node'));
    const c = client(s.url);
    const e = await rejection(c.publishLogs('k', 4, ['{}']));
    expect(e.message).toContain('no such node');
    expect(s.requests).toHaveLength(1);
  });

  // issue 15: a result is the backend's answer even on a 5xx.
  it('decodes a JSON-RPC result sent with HTTP 500', async () => {
    const s = await server(rawReply(500, JSON.stringify({ jsonrpc: '2.0', id: 0, result: { config: '{"a":1}' } })));
    const c = client(s.url);
    await expect(c.requestConfig('k')).resolves.toMatchObject({ config: '{"a":1}' });
    expect(s.requests).toHaveLength(1);
  });

  // issue 15: retries stay where no answer came: a 5xx without a JSON-RPC body, bounded by maxAttempts.
  it('retries a 5xx without a JSON-RPC body a bounded number of times and says what came back', async () => {
    const s = await server(rawReply(502, '<html>Bad Gateway</html>', { 'Content-Type': 'text/html' }));
    const c = client(s.url, { maxAttempts: 4 });
    const e = await rejection(c.requestQueries('k'));
    expect(e.code).toBe('E_DEVICE_TRANSPORT');
    expect(e.message).toContain('HTTP 502');
    expect(e.message).toContain('Bad Gateway');
    expect(e.attempts).toBe(4);
    expect(s.requests).toHaveLength(4);
  });

  it('retries a refused connection a bounded number of times', async () => {
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', () => r()));
    const port = (free.address() as AddressInfo).port;
    await new Promise<void>((r) => free.close(() => r()));
    const c = client(`http://127.0.0.1:${port}`, { maxAttempts: 3 });
    const e = await rejection(c.checkHealth());
    expect(e.code).toBe('E_DEVICE_TRANSPORT');
    expect(e.attempts).toBe(3);
    expect(c.stats()).toMatchObject({ retries: 2, requests: 3 });
  });

  // issue 15: the base URL is part of each call, so one shared client serves registrations in different regions.
  it('sends a call to its own server URL when given one, and checks it like the configured one', async () => {
    const home = await server(rpcResult({ config: 'home' }));
    const moved = await server(rpcResult({ config: 'moved' }));
    const c = client(home.url);
    await expect(c.requestConfig('k', { serverUrl: moved.url })).resolves.toMatchObject({ config: 'moved' });
    await expect(c.requestConfig('k')).resolves.toMatchObject({ config: 'home' });
    expect(moved.requests).toHaveLength(1);
    expect(home.requests).toHaveLength(1);
    expect(c.checkServerUrl(`${moved.url}`)).toBe(moved.url);
    const tlsOnly = new DeviceClient({ serverUrl: 'https://127.0.0.1:1' });
    clients.push(tlsOnly);
    expect(() => tlsOnly.checkServerUrl('http://evil.example')).toThrow(/plain http/);
    expect(() => c.checkServerUrl('http://127.0.0.1:1/path')).toThrow(/scheme:\/\/host/);
  });
});
