/**
 * Two registrations (two tenants) sharing one device client and one SQLite
 * file never see each other's node keys, configs, logs or queries.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigCache } from '../../src/store/config-cache.js';
import { NodeKeyStore } from '../../src/store/node-keys.js';
import { waitFor } from '../helpers/tmp.js';
import { GLOBEX_SECRET, call, makeEnv, seqLine, seqOf, type Env } from './support.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

let env: Env;

beforeEach(async () => {
  env = await makeEnv({ concurrency: 2 });
});

afterEach(async () => {
  await env.cleanup();
});

describe('two tenants on one client', () => {
  it('keep node keys, configs, logs and queries apart', async () => {
    env.server.setConfig('acme', { options: { tenant: 'acme' } });
    const acme = env.make({ publishIntervalMs: 20 });
    const globex = env.make({ registrationId: rid('globex'), enrollSecret: GLOBEX_SECRET, publishIntervalMs: 20 });
    expect(acme.hostIdentifier).not.toBe(globex.hostIdentifier);
    acme.start();
    globex.start();
    await waitFor(() => acme.status().enrolled && globex.status().enrolled, 5_000, 'both enrolled');

    const keys = new NodeKeyStore(env.db);
    const ka = keys.getNodeKey('acme')!;
    const kg = keys.getNodeKey('globex')!;
    expect(ka).toMatch(/^acme::/);
    expect(kg).toMatch(/^globex::/);

    const [ca, cg] = await Promise.all([
      call(acme.configPlugin, { action: 'genConfig' }),
      call(globex.configPlugin, { action: 'genConfig' }),
    ]);
    expect(JSON.parse(ca.response[0]!.config!).options.tenant).toBe('acme');
    expect(JSON.parse(cg.response[0]!.config!).options.tenant).toBe('globex');
    const cache = new ConfigCache(env.db);
    expect(JSON.parse(cache.get('acme')!.config).options.tenant).toBe('acme');
    expect(JSON.parse(cache.get('globex')!.config).options.tenant).toBe('globex');

    const qa = env.server.addQuery('acme', 'select "acme"');
    const qg = env.server.addQuery('globex', 'select "globex"');
    const [ra, rg] = await Promise.all([
      call(acme.distributedPlugin, { action: 'getQueries' }),
      call(globex.distributedPlugin, { action: 'getQueries' }),
    ]);
    expect(JSON.parse(ra.response[0]!.results!).queries).toEqual({ [qa]: 'select "acme"' });
    expect(JSON.parse(rg.response[0]!.results!).queries).toEqual({ [qg]: 'select "globex"' });

    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 === 0 ? acme : globex).loggerPlugin.logString(seqLine(i), i % 4 < 2 ? 'string' : 'snapshot'),
      ),
    );
    await call(acme.loggerPlugin, { status: 'true', log: JSON.stringify([{ s: 1, m: 'acme-status' }]) });
    await waitFor(() => env.server.logs().length === 41, 5_000, 'all logs delivered');
    expect(env.server.logs({ tenant: 'acme', logType: 0 }).map((l) => seqOf(l.data))).toEqual(Array.from({ length: 20 }, (_, i) => i * 2));
    expect(env.server.logs({ tenant: 'globex', logType: 0 }).map((l) => seqOf(l.data))).toEqual(
      Array.from({ length: 20 }, (_, i) => i * 2 + 1),
    );
    expect(env.server.logs({ tenant: 'globex', logType: 4 })).toHaveLength(0);
    expect(env.server.logs({ tenant: 'acme', logType: 4 }).map((l) => JSON.parse(l.data).m)).toEqual(['acme-status']);

    // Every request carried the node key of its own registration.
    for (const r of env.server.requests()) {
      const p = JSON.parse(r.body.toString()).params;
      if (!p.node_key) continue;
      const tenant = p.node_key === ka ? 'acme' : p.node_key === kg ? 'globex' : 'unknown';
      expect(tenant).not.toBe('unknown');
    }
    expect(env.server.logs({ tenant: 'acme' }).every((l) => l.hostIdentifier === acme.hostIdentifier)).toBe(true);
    expect(env.server.logs({ tenant: 'globex' }).every((l) => l.hostIdentifier === globex.hostIdentifier)).toBe(true);

    // Revoking one tenant's key re-enrolls only that tenant.
    env.server.revokeNodeKeys({ tenant: 'acme' });
    await call(acme.configPlugin, { action: 'genConfig' });
    await call(globex.configPlugin, { action: 'genConfig' });
    expect(acme.status().reenrollments).toBe(1);
    expect(globex.status().reenrollments).toBe(0);
    expect(keys.getNodeKey('globex')).toBe(kg);
    expect(keys.getNodeKey('acme')).not.toBe(ka);

    // Buffers and stats are per registration.
    expect(acme.status().publishedLogs.result).toBe(20);
    expect(globex.status().publishedLogs.result).toBe(20);
  });
});
