/**
 * The dev server over real HTTP(S) on 127.0.0.1, driven by the real device
 * client and by raw requests.
 */
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DeviceClient, DeviceError } from '../../src/device/index.js';
import { startDevServer, type DevServer } from '../../src/devserver/index.js';
import { shortTempDir } from '../helpers/tmp.js';
import { makeTlsFixture, type TlsFixture } from '../device/support.js';

const servers: DevServer[] = [];
const clients: DeviceClient[] = [];
let tmp: { dir: string; cleanup: () => void };
let fx: TlsFixture;

beforeAll(() => {
  tmp = shortTempDir('dsv');
  fx = makeTlsFixture(tmp.dir);
});

afterAll(() => tmp?.cleanup());

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
});

async function setup(): Promise<{ server: DevServer; client: DeviceClient }> {
  const server = await startDevServer({
    tenants: [
      { name: 'acme', secrets: ['acme-secret'] },
      { name: 'globex', secrets: ['globex-secret'], config: '{"options":{"x":1}}' },
    ],
  });
  servers.push(server);
  const client = new DeviceClient({ serverUrl: server.url, insecureTransport: true, maxAttempts: 1 });
  clients.push(client);
  return { server, client };
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function raw(url: string, method: string, body?: string, headers: Record<string, string> = {}, path = '/'): Promise<RawResponse> {
  return new Promise((resolvePromise, reject) => {
    const req = http.request(`${url}${path}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const enroll = (client: DeviceClient, secret: string, host: string) =>
  client.requestEnrollment({ enrollSecret: secret, hostIdentifier: host, details: { hostname: host } });

describe('dev server JSON-RPC', () => {
  it('serves all six methods to the real client and counts them', async () => {
    const { server, client } = await setup();
    const e = await enroll(client, 'acme-secret', 'h1');
    expect(e.nodeInvalid).toBe(false);
    expect(e.nodeKey).toMatch(/^acme::/);
    const cfg = await client.requestConfig(e.nodeKey);
    expect(JSON.parse(cfg.config)).toHaveProperty('schedule');
    expect((await client.publishLogs(e.nodeKey, 4, ['{"s":0}'])).message).toBe('ok');
    await client.publishLogs(e.nodeKey, 0, ['{"name":"q"}']);
    const name = server.addQuery('acme', 'select 1', 'q1');
    expect((await client.requestQueries(e.nodeKey)).queries.queries).toEqual({ q1: 'select 1' });
    expect((await client.requestQueries(e.nodeKey)).queries.queries).toEqual({});
    await client.publishResults(e.nodeKey, [{ query_name: name, status: 0, rows: [{ a: '1' }], stats: null, message: '' }]);
    expect((await client.checkHealth()).status).toBe(1);

    expect(server.stats().calls).toEqual({
      RequestEnrollment: 1,
      RequestConfig: 1,
      PublishLogs: 2,
      RequestQueries: 2,
      PublishResults: 1,
      CheckHealth: 1,
    });
    expect(server.logs({ tenant: 'acme', logType: 4 }).map((l) => l.data)).toEqual(['{"s":0}']);
    expect(server.logs({ tenant: 'acme', logType: 0 }).map((l) => l.data)).toEqual(['{"name":"q"}']);
    expect(server.results({ tenant: 'acme' })).toMatchObject([{ queryName: 'q1', status: 0, rows: [{ a: '1' }], hostIdentifier: 'h1' }]);
    expect(server.nodes('acme')[0]!.details).toMatchObject({ hostname: 'h1' });
  });

  it('answers node_invalid to a bad secret, an unknown key and a revoked key', async () => {
    const { server, client } = await setup();
    expect((await enroll(client, 'wrong', 'h')).nodeInvalid).toBe(true);
    expect((await client.requestConfig('acme::nope')).nodeInvalid).toBe(true);
    expect((await client.publishLogs('acme::nope', 0, ['x'])).nodeInvalid).toBe(true);
    expect((await client.requestQueries('acme::nope')).nodeInvalid).toBe(true);
    expect((await client.publishResults('acme::nope', [])).nodeInvalid).toBe(true);
    expect(server.logs()).toHaveLength(0);
    const { nodeKey } = await enroll(client, 'acme-secret', 'h');
    expect(server.revokeNodeKeys({ tenant: 'acme' })).toBe(1);
    expect((await client.requestConfig(nodeKey)).nodeInvalid).toBe(true);
    // Re-enrolling the same host issues a new key and revokes the old one.
    const k2 = (await enroll(client, 'acme-secret', 'h')).nodeKey;
    const k3 = (await enroll(client, 'acme-secret', 'h')).nodeKey;
    expect((await client.requestConfig(k2)).nodeInvalid).toBe(true);
    expect((await client.requestConfig(k3)).nodeInvalid).toBe(false);
  });

  it('keeps tenants apart: configs, queries and logs', async () => {
    const { server, client } = await setup();
    const a = (await enroll(client, 'acme-secret', 'ha')).nodeKey;
    const g = (await enroll(client, 'globex-secret', 'hg')).nodeKey;
    expect(JSON.parse((await client.requestConfig(g)).config)).toEqual({ options: { x: 1 } });
    server.setConfig('acme', { options: { y: 2 } });
    expect(JSON.parse((await client.requestConfig(a)).config)).toEqual({ options: { y: 2 } });
    server.addQuery('globex', 'select 2');
    expect((await client.requestQueries(a)).queries.queries).toEqual({});
    expect(Object.values((await client.requestQueries(g)).queries.queries)).toEqual(['select 2']);
    await client.publishLogs(a, 0, ['from-a']);
    expect(server.logs({ tenant: 'globex' })).toHaveLength(0);
  });

  it('answers disable_device for a disabled tenant', async () => {
    const { server, client } = await setup();
    const k = (await enroll(client, 'acme-secret', 'h')).nodeKey;
    server.setDisabled('acme', true);
    expect((await client.requestConfig(k)).disableDevice).toBe(true);
    expect((await enroll(client, 'acme-secret', 'h2')).disableDevice).toBe(true);
  });

  it('HTTP edge cases: 405, chunked 400, -32000 with HTTP 200, -32601, id echo, 404', async () => {
    const { server } = await setup();
    expect((await raw(server.url, 'GET')).status).toBe(405);
    expect((await raw(server.url, 'PUT', '{}', { 'Content-Length': '2' })).status).toBe(405);
    const chunked = await raw(server.url, 'POST', '{"jsonrpc":"","method":"CheckHealth","params":{},"id":0}', {
      'Transfer-Encoding': 'chunked',
    });
    expect(chunked.status).toBe(400);
    expect(server.stats().rejectedChunked).toBe(1);
    const garbage = await raw(server.url, 'POST', 'not json', { 'Content-Length': '8' });
    expect(garbage.status).toBe(200);
    expect(JSON.parse(garbage.body)).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32000 } });
    const badParams = JSON.stringify({ jsonrpc: '', method: 'PublishLogs', params: { node_key: 'k', LogType: 'zero', Logs: [] }, id: 17 });
    const bp = await raw(server.url, 'POST', badParams, { 'Content-Length': String(badParams.length) });
    expect(JSON.parse(bp.body)).toMatchObject({ jsonrpc: '2.0', id: 17, error: { code: -32000 } });
    const unknown = JSON.stringify({ jsonrpc: '', method: 'Nope', params: {}, id: 5 });
    expect(JSON.parse((await raw(server.url, 'POST', unknown, { 'Content-Length': String(unknown.length) })).body)).toMatchObject({
      id: 5,
      error: { code: -32601 },
    });
    const health = JSON.stringify({ jsonrpc: '', method: 'CheckHealth', params: {}, id: 41 });
    expect(JSON.parse((await raw(server.url, 'POST', health, { 'Content-Length': String(health.length) })).body)).toEqual({
      jsonrpc: '2.0',
      id: 41,
      result: { status: 1 },
    });
    expect((await raw(server.url, 'GET', undefined, {}, '/elsewhere')).status).toBe(404);
    expect(server.requests().at(-1)!.rpcMethod).toBe('CheckHealth');
  });

  it('admin endpoints: tenants, config, queries, logs, results, nodes, revoke, fault, stats', async () => {
    const { server, client } = await setup();
    const auth = { Authorization: `Bearer ${server.adminToken}` };
    const post = async (path: string, body: unknown) => {
      const text = JSON.stringify(body);
      const r = await raw(
        server.url,
        'POST',
        text,
        { ...auth, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) },
        path,
      );
      return { status: r.status, json: JSON.parse(r.body) };
    };
    const get = async (path: string) => JSON.parse((await raw(server.url, 'GET', undefined, auth, path)).body);
    expect((await post('/admin/tenants', { name: 'initech', secrets: ['i-secret'], config: { options: { z: 3 } } })).status).toBe(200);
    const k = (await enroll(client, 'i-secret', 'hi')).nodeKey;
    expect(JSON.parse((await client.requestConfig(k)).config)).toEqual({ options: { z: 3 } });
    await post('/admin/config', { tenant: 'initech', config: '{"options":{"z":4}}' });
    expect(JSON.parse((await client.requestConfig(k)).config)).toEqual({ options: { z: 4 } });
    const { json: q } = await post('/admin/queries', { tenant: 'initech', sql: 'select 3' });
    expect(q.name).toMatch(/^devq_/);
    expect((await client.requestQueries(k)).queries.queries).toEqual({ [q.name]: 'select 3' });
    await client.publishLogs(k, 4, ['st']);
    await client.publishLogs(k, 0, ['re']);
    await client.publishResults(k, [{ query_name: q.name, status: 1, rows: null, stats: null, message: 'no such table' }]);
    expect((await get('/admin/logs?tenant=initech&type=status')).logs.map((l: { data: string }) => l.data)).toEqual(['st']);
    expect((await get('/admin/logs?tenant=initech&type=result')).logs.map((l: { data: string }) => l.data)).toEqual(['re']);
    expect((await get(`/admin/results?tenant=initech&query=${q.name}`)).results).toMatchObject([
      { status: 1, message: 'no such table', rows: null },
    ]);
    expect((await get('/admin/nodes?tenant=initech')).nodes).toHaveLength(1);
    // One wire style (issue 21): snake_case field names and ISO-8601 times, also under format=ndjson.
    const [log] = (await get('/admin/logs?tenant=initech&type=status')).logs as Array<Record<string, unknown>>;
    expect(Object.keys(log!).sort()).toEqual(['data', 'host_identifier', 'id', 'log_type', 'received_at', 'tenant']);
    expect(log!.received_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const [node] = (await get('/admin/nodes?tenant=initech')).nodes as Array<Record<string, unknown>>;
    expect(node).toHaveProperty('enrolled_at');
    expect(node).not.toHaveProperty('node_key');
    expect((await get('/admin/stats')).calls.RequestQueries).toBe(1);
    expect((await post('/admin/queries', { tenant: 'nobody', sql: 'x' })).status).toBe(404);
    expect((await post('/admin/queries', { tenant: 'initech' })).status).toBe(400);
    await post('/admin/fault', { mode: 'garbage', methods: ['CheckHealth'], count: 1 });
    await expect(client.checkHealth()).rejects.toMatchObject({ code: 'E_DEVICE_RESPONSE' });
    expect((await client.checkHealth()).status).toBe(1);
    expect((await post('/admin/revoke', { tenant: 'initech' })).json.revoked).toBe(1);
    expect((await client.requestConfig(k)).nodeInvalid).toBe(true);
  });

  // issue 13: the admin endpoints were open to every local user (queue a query into any tenant's osqueryd).
  it('admin endpoints answer 401 without the token or with a wrong one, and change nothing', async () => {
    const { server, client } = await setup();
    const k = (await enroll(client, 'acme-secret', 'h')).nodeKey;
    const text = JSON.stringify({ tenant: 'acme', sql: "attach database '/x' as x" });
    const json = { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) };
    const wrong: Array<Record<string, string>> = [
      {},
      { Authorization: 'Bearer ' },
      { Authorization: `Bearer ${'0'.repeat(server.adminToken.length)}` },
      { Authorization: `Bearer ${server.adminToken.slice(0, -1)}` },
      { Authorization: `Bearer ${server.adminToken}x` },
      { Authorization: `Basic ${Buffer.from(`admin:${server.adminToken}`).toString('base64')}` },
      { Authorization: server.adminToken },
    ];
    for (const headers of wrong) {
      const queued = await raw(server.url, 'POST', text, { ...json, ...headers }, '/admin/queries');
      expect(queued.status, JSON.stringify(headers)).toBe(401);
      expect(queued.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(queued.body).not.toContain(server.adminToken);
      for (const path of ['/admin/stats', '/admin/logs?tenant=acme', '/admin/nodes', '/admin/tenants']) {
        expect((await raw(server.url, 'GET', undefined, headers, path)).status).toBe(401);
      }
      const revoke = JSON.stringify({ tenant: 'acme' });
      expect(
        (
          await raw(
            server.url,
            'POST',
            revoke,
            { 'Content-Type': 'application/json', 'Content-Length': String(revoke.length), ...headers },
            '/admin/revoke',
          )
        ).status,
      ).toBe(401);
      expect((await raw(server.url, 'DELETE', undefined, headers, '/admin/fault')).status).toBe(401);
    }
    // Nothing was queued or revoked.
    expect((await client.requestQueries(k)).queries.queries ?? {}).toEqual({});
    expect((await client.requestConfig(k)).nodeInvalid).toBe(false);
    // The right token works (case-insensitive scheme, as RFC 7235).
    const ok = await raw(server.url, 'POST', text, { ...json, Authorization: `bearer ${server.adminToken}` }, '/admin/queries');
    expect(ok.status).toBe(200);
    expect(Object.values((await client.requestQueries(k)).queries.queries)).toEqual(["attach database '/x' as x"]);
  });

  it('an admin token given at start is the one required; a short one is refused', async () => {
    const token = 'a'.repeat(40);
    const server = await startDevServer({ adminToken: token });
    servers.push(server);
    expect((await raw(server.url, 'GET', undefined, { Authorization: `Bearer ${token}` }, '/admin/stats')).status).toBe(200);
    await expect(startDevServer({ adminToken: 'short' })).rejects.toThrow(/admin token is too short \(5 characters/);
  });

  it('fault knobs produce the failures the client must survive', async () => {
    const { server, client } = await setup();
    const k = (await enroll(client, 'acme-secret', 'h')).nodeKey;
    const expectCode = async (mode: Parameters<DevServer['setFault']>[0], code: string) => {
      server.setFault(mode);
      try {
        await client.requestConfig(k, { timeoutMs: 300 });
        throw new Error(`expected ${code}`);
      } catch (err) {
        expect(err).toBeInstanceOf(DeviceError);
        expect((err as DeviceError).code).toBe(code);
      } finally {
        server.setFault(undefined);
      }
    };
    await expectCode({ mode: 'down' }, 'E_DEVICE_TRANSPORT');
    await expectCode({ mode: 'http500' }, 'E_DEVICE_TRANSPORT');
    await expectCode({ mode: 'garbage' }, 'E_DEVICE_RESPONSE');
    await expectCode({ mode: 'rpc-error' }, 'E_DEVICE_REJECTED');
    await expectCode({ mode: 'err-field' }, 'E_DEVICE_RESPONSE');
    await expectCode({ mode: 'wrong-types' }, 'E_DEVICE_RESPONSE');
    await expectCode({ mode: 'huge' }, 'E_DEVICE_RESPONSE');
    await expectCode({ mode: 'hang' }, 'E_TIMEOUT');
    await expectCode({ mode: 'slow', delayMs: 5_000 }, 'E_TIMEOUT');
    server.setFault({ mode: 'slow', delayMs: 20 });
    expect((await client.requestConfig(k)).nodeInvalid).toBe(false);
    server.setFault({ mode: 'http500', count: 2, methods: ['RequestConfig'] });
    expect((await client.checkHealth()).status).toBe(1);
    await expect(client.requestConfig(k)).rejects.toThrow();
    await expect(client.requestConfig(k)).rejects.toThrow();
    expect((await client.requestConfig(k)).nodeInvalid).toBe(false);
    expect(server.stats().faultsInjected).toBeGreaterThanOrEqual(11);
  });

  it('serves HTTPS with a given certificate', async () => {
    const server = await startDevServer({ tls: { cert: fx.serverCert, key: fx.serverKey }, tenants: [{ name: 't', secrets: ['s'] }] });
    servers.push(server);
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:/);
    const client = new DeviceClient({ serverUrl: server.url, rootPemPath: fx.caPath, certPins: [fx.serverPin] });
    clients.push(client);
    expect((await enroll(client, 's', 'h')).nodeKey).toMatch(/^t::/);
  });

  it('persists to its SQLite file across restarts', async () => {
    const dbPath = join(tmp.dir, 'dev-persist.db');
    const s1 = await startDevServer({ dbPath, tenants: [{ name: 't', secrets: ['s'] }] });
    const c = new DeviceClient({ serverUrl: s1.url, insecureTransport: true });
    const k = (await enroll(c, 's', 'h')).nodeKey;
    await c.publishLogs(k, 0, ['kept']);
    c.close();
    await s1.close();
    const s2 = await startDevServer({ dbPath });
    servers.push(s2);
    const c2 = new DeviceClient({ serverUrl: s2.url, insecureTransport: true });
    clients.push(c2);
    expect((await c2.requestConfig(k)).nodeInvalid).toBe(false);
    expect(s2.logs().map((l) => l.data)).toEqual(['kept']);
  });
});

describe('dev server standalone entry (dist)', () => {
  let child: ChildProcess | undefined;
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    child = undefined;
  });

  it('node dist/src/devserver/main.js --port 0 --db path prints its URL, serves, and exits on SIGTERM', async () => {
    const main = resolve('dist/src/devserver/main.js');
    child = spawn(process.execPath, [main, '--port', '0', '--db', join(tmp.dir, 'main.db'), '--tenant', 'acme:sek1,sek2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.resume();
    const lines = createInterface({ input: child.stdout! });
    const [first] = (await once(lines, 'line')) as [string];
    const { url, port } = JSON.parse(first) as { url: string; port: number };
    expect(port).toBeGreaterThan(0);
    const client = new DeviceClient({ serverUrl: url, insecureTransport: true });
    clients.push(client);
    expect((await enroll(client, 'sek2', 'h')).nodeKey).toMatch(/^acme::/);
    // issue 13: without --admin-token-file nobody knows the token.
    expect((await raw(url, 'GET', undefined, {}, '/admin/stats')).status).toBe(401);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
  });

  // issue 13: `launcher dev-server --admin-token-file` writes a fresh token 0600; admin requests need it.
  it('--admin-token-file writes a fresh 0600 token that the admin endpoints require', async () => {
    const main = resolve('dist/src/devserver/main.js');
    const file = join(tmp.dir, 'admin.token');
    const start = async () => {
      child = spawn(process.execPath, [main, '--port', '0', '--tenant', 'acme:sek1', '--admin-token-file', file], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const [first] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      expect(first).not.toMatch(/[0-9a-f]{64}/);
      return { url: (JSON.parse(first) as { url: string }).url, stderr: () => stderr };
    };
    const stop = async () => {
      const exited = once(child!, 'exit');
      child!.kill('SIGTERM');
      await exited;
    };
    const { url, stderr } = await start();
    const token = readFileSync(file, 'utf8').trim();
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect((await raw(url, 'GET', undefined, {}, '/admin/stats')).status).toBe(401);
    expect((await raw(url, 'GET', undefined, { Authorization: `Bearer ${token}` }, '/admin/stats')).status).toBe(200);
    expect(stderr()).not.toContain(token);
    await stop();
    // A restart writes a new token: the old one stops working.
    const again = await start();
    const second = readFileSync(file, 'utf8').trim();
    expect(second).not.toBe(token);
    expect((await raw(again.url, 'GET', undefined, { Authorization: `Bearer ${token}` }, '/admin/stats')).status).toBe(401);
    expect((await raw(again.url, 'GET', undefined, { Authorization: `Bearer ${second}` }, '/admin/stats')).status).toBe(200);
    await stop();
  });
});
