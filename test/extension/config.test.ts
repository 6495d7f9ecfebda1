/** The config plugin (docs/protocol/device.md#config-plugin): rewrite, cache, offline fallbacks. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigCache } from '../../src/store/config-cache.js';
import { rewriteConfig, verboseFor } from '../../extensions/kolide_grpc/index.js';
import { call, makeEnv, type Env } from './support.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

let env: Env;

beforeEach(async () => {
  env = await makeEnv();
});

afterEach(async () => {
  await env.cleanup();
});

const configOf = (res: { response: Record<string, string>[] }) =>
  JSON.parse(res.response[0]!.config!) as { options: Record<string, unknown> } & Record<string, unknown>;

describe('rewriteConfig', () => {
  it('forces verbose and distributed_interval=5, keeping everything else', () => {
    const out = JSON.parse(
      rewriteConfig('{"options":{"distributed_interval":60,"x":1},"schedule":{"a":{"query":"select 1","interval":10}}}', true),
    );
    expect(out).toEqual({
      options: { distributed_interval: 5, x: 1, verbose: true },
      schedule: { a: { query: 'select 1', interval: 10 } },
    });
  });

  it('an empty config becomes {} with the forced options', () => {
    expect(JSON.parse(rewriteConfig('', false))).toEqual({ options: { verbose: false, distributed_interval: 5 } });
  });

  it('passes through text that is not a JSON object or whose options is not an object', () => {
    for (const text of ['not json', '[1,2]', '"str"', '{"options":[1]}', '{"options":"x"}']) expect(rewriteConfig(text, true)).toBe(text);
  });

  it('verbose until 10 minutes of uptime; true when unknown', () => {
    expect(verboseFor(0, 600)).toBe(true);
    expect(verboseFor(599, 600)).toBe(true);
    expect(verboseFor(600, 600)).toBe(false);
    expect(verboseFor(undefined, 600)).toBe(true);
  });
});

describe('kolide_grpc config plugin', () => {
  it('serves the rewritten server config and caches it', async () => {
    let uptime = 5;
    const ext = env.make({ registrationId: rid('globex'), enrollSecret: 'globex-secret', getUptimeSeconds: () => uptime });
    const res = await call(ext.configPlugin, { action: 'genConfig' });
    expect(res.status.code).toBe(0);
    expect(Object.keys(res.response[0]!)).toEqual(['config']);
    // schedule_lognames: the query quarantine's (issue 16), on the served config only; the cache keeps the rewrite.
    expect(configOf(res)).toEqual({
      options: { tenant: 'globex', verbose: true, distributed_interval: 5, schedule_lognames: true },
      schedule: {},
    });
    const cached = JSON.parse(new ConfigCache(env.db).get('globex')!.config) as Record<string, unknown>;
    expect(cached).toEqual({ options: { tenant: 'globex', verbose: true, distributed_interval: 5 }, schedule: {} });
    uptime = 601;
    expect(configOf(await call(ext.configPlugin, { action: 'genConfig' })).options.verbose).toBe(false);
    expect(ext.status().lastConfigSource).toBe('server');
  });

  it('serves the cache while the backend is down', async () => {
    const ext = env.make();
    const good = await call(ext.configPlugin, { action: 'genConfig' });
    env.server.setFault({ mode: 'down' });
    const offline = await call(ext.configPlugin, { action: 'genConfig' });
    expect(offline.status.code).toBe(0);
    expect(offline.response).toEqual(good.response);
    expect(ext.status().lastConfigSource).toBe('cache');
    expect(ext.status().lastError).toMatchObject({ operation: 'config', code: 'E_DEVICE_TRANSPORT' });
  });

  it('serves the cached config after an offline restart', async () => {
    const first = env.make();
    const good = await call(first.configPlugin, { action: 'genConfig' });
    await first.stop();
    await env.server.close();
    env.reopen();
    const second = env.make();
    const res = await call(second.configPlugin, { action: 'genConfig' });
    expect(res.status.code).toBe(0);
    expect(res.response).toEqual(good.response);
  });

  it('with neither cache nor node key serves {}', async () => {
    env.server.setFault({ mode: 'down' });
    const ext = env.make();
    const res = await call(ext.configPlugin, { action: 'genConfig' });
    expect(res.status.code).toBe(0);
    expect(res.response).toEqual([{ config: '{}' }]);
    expect(ext.status().lastConfigSource).toBe('empty');
  });

  it('with a node key but no cache fails (osqueryd sees status 1)', async () => {
    const ext = env.make();
    await ext.enroll();
    env.server.setFault({ mode: 'garbage' });
    const res = await call(ext.configPlugin, { action: 'genConfig' });
    expect(res.status.code).toBe(1);
    expect(res.status.message).toMatch(/no config/);
  });
});
