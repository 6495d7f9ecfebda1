/** The distributed plugin (docs/protocol/device.md#distributed-plugin): throttling, Results shape, failures. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QueryThrottle } from '../../extensions/kolide_grpc/query-throttle.js';
import { toDeviceResults } from '../../extensions/kolide_grpc/index.js';
import { call, makeEnv, type Env } from './support.js';

let env: Env;

beforeEach(async () => {
  env = await makeEnv();
});

afterEach(async () => {
  await env.cleanup();
});

const queriesOf = (res: { response: Record<string, string>[] }) => JSON.parse(res.response[0]!.results!) as Record<string, unknown>;

describe('QueryThrottle', () => {
  it('forwards in the startup window, then at most once per interval', () => {
    const t = new QueryThrottle(60_000, 120_000, 0);
    expect(t.take(0)).toBe(true);
    expect(t.take(5_000)).toBe(true);
    expect(t.take(119_999)).toBe(true);
    expect(t.take(120_000)).toBe(false);
    expect(t.take(179_998)).toBe(false);
    expect(t.take(179_999)).toBe(true);
    expect(t.take(180_000)).toBe(false);
  });

  it('accelerate opens a new forward-everything window', () => {
    const t = new QueryThrottle(60_000, 0, 0);
    expect(t.take(0)).toBe(true);
    expect(t.take(1_000)).toBe(false);
    t.accelerate(300, 1_000);
    expect(t.take(2_000)).toBe(true);
    expect(t.take(300_999)).toBe(true);
    expect(t.take(301_000)).toBe(false);
    t.accelerate(0, 301_000);
    expect(t.take(301_500)).toBe(false);
  });
});

describe('toDeviceResults', () => {
  it('one Result per statuses entry with osquery-go shapes', () => {
    expect(
      toDeviceResults({
        queries: { ok: [{ version: '5.12.1' }], empty: [] },
        statuses: { ok: 0, empty: 0, failed: 1 },
        messages: { failed: 'no such table: nope' },
        stats: { ok: { wall_time_ms: 4, user_time: 1, system_time: 0, memory: 0 }, empty: {} },
      }),
    ).toEqual([
      {
        query_name: 'ok',
        status: 0,
        rows: [{ version: '5.12.1' }],
        stats: { wall_time_ms: 4, user_time: 1, system_time: 0, memory: 0 },
        message: '',
      },
      { query_name: 'empty', status: 0, rows: null, stats: { wall_time_ms: 0, user_time: 0, system_time: 0, memory: 0 }, message: '' },
      { query_name: 'failed', status: 1, rows: [], stats: null, message: 'no such table: nope' },
    ]);
  });
});

describe('kolide_grpc distributed plugin', () => {
  it('getQueries forwards the tenant queue and then throttles without calling the server', async () => {
    const ext = env.make({ distributedForwardingIntervalMs: 60_000, distributedStartupWindowMs: 0 });
    const name = env.server.addQuery('acme', 'select version from osquery_info');
    const first = await call(ext.distributedPlugin, { action: 'getQueries' });
    expect(first.status.code).toBe(0);
    expect(queriesOf(first)).toEqual({ queries: { [name]: 'select version from osquery_info' } });
    env.server.addQuery('acme', 'select 2');
    const second = await call(ext.distributedPlugin, { action: 'getQueries' });
    expect(queriesOf(second)).toEqual({ queries: {} });
    expect(env.server.stats().calls.RequestQueries).toBe(1);
  });

  it('forwards every call inside the startup window', async () => {
    const ext = env.make({ distributedForwardingIntervalMs: 60_000, distributedStartupWindowMs: 120_000 });
    await call(ext.distributedPlugin, { action: 'getQueries' });
    await call(ext.distributedPlugin, { action: 'getQueries' });
    await call(ext.distributedPlugin, { action: 'getQueries' });
    expect(env.server.stats().calls.RequestQueries).toBe(3);
  });

  it('writeResults sends PublishResults with statuses and messages preserved', async () => {
    const ext = env.make();
    const results = {
      queries: { q1: [{ a: '1' }, { a: '2' }], q2: [] },
      statuses: { q1: 0, q2: '1' },
      messages: { q1: '', q2: 'distributed query is denylisted' },
      stats: { q1: { wall_time_ms: 3, user_time: 1, system_time: 1, memory: 1024 }, q2: {} },
    };
    const res = await call(ext.distributedPlugin, { action: 'writeResults', results: JSON.stringify(results) });
    expect(res.status.code).toBe(0);
    const [req] = env.server.requests().filter((r) => r.rpcMethod === 'PublishResults');
    const params = JSON.parse(req!.body.toString()).params;
    expect(Object.keys(params)).toEqual(['node_key', 'Results']);
    expect(params.Results).toEqual([
      {
        query_name: 'q1',
        status: 0,
        rows: [{ a: '1' }, { a: '2' }],
        stats: { wall_time_ms: 3, user_time: 1, system_time: 1, memory: 1024 },
        message: '',
      },
      {
        query_name: 'q2',
        status: 1,
        rows: null,
        stats: { wall_time_ms: 0, user_time: 0, system_time: 0, memory: 0 },
        message: 'distributed query is denylisted',
      },
    ]);
    expect(env.server.results({ tenant: 'acme' }).map((r) => [r.queryName, r.status, r.message])).toEqual([
      ['q1', 0, ''],
      ['q2', 1, 'distributed query is denylisted'],
    ]);
  });

  it('a failed PublishResults is status 1 to osqueryd (no buffering)', async () => {
    const ext = env.make();
    await ext.enroll();
    env.server.setFault({ mode: 'http500', methods: ['PublishResults'] });
    const res = await call(ext.distributedPlugin, { action: 'writeResults', results: '{"queries":{"q":[]},"statuses":{"q":0}}' });
    expect(res.status.code).toBe(1);
    expect(ext.status().lastError).toMatchObject({ operation: 'results', code: 'E_DEVICE_TRANSPORT' });
    const q = await call(ext.distributedPlugin, { action: 'getQueries' });
    expect(q.status.code).toBe(0);
  });

  it('a failed RequestQueries is status 1 to osqueryd', async () => {
    const ext = env.make();
    env.server.setFault({ mode: 'garbage', methods: ['RequestQueries'] });
    const res = await call(ext.distributedPlugin, { action: 'getQueries' });
    expect(res.status.code).toBe(1);
    expect(res.status.message).toMatch(/RequestQueries/);
  });
});
