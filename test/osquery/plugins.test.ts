// Issue 2: plugin request/response contracts (docs/protocol/osquery-extensions.md#plugins), through dispatchPluginCall.
import { describe, expect, it } from 'vitest';
import {
  dispatchPluginCall,
  equalityValues,
  parseQueryContext,
  type ConfigPlugin,
  type DistributedPlugin,
  type DistributedResults,
  type LoggerPlugin,
  type StatusLog,
} from '../../src/osquery/plugins.js';

describe('plugin contracts', () => {
  it('logger: init, features bitmask in status.code, status batches with short keys, string and snapshot logs', async () => {
    const got: { strings: Array<[string, string]>; statuses: StatusLog[]; raw: string[]; inits: string[] } = {
      strings: [],
      statuses: [],
      raw: [],
      inits: [],
    };
    const logger: LoggerPlugin = {
      kind: 'logger',
      name: 'kolide_grpc',
      features: 1,
      init: (n) => void got.inits.push(n),
      logString: (t, k) => void got.strings.push([k, t]),
      logStatus: (e, raw) => {
        got.statuses.push(...e);
        got.raw.push(...raw);
      },
    };
    expect((await dispatchPluginCall(logger, { init: 'osqueryd' })).status.code).toBe(0);
    expect((await dispatchPluginCall(logger, { action: 'features' })).status.code).toBe(1);
    const batch =
      '[{"s":0,"f":"events.cpp","i":825,"m":"hello","h":"host","c":"Mon Jun 10 12:00:00 2024 UTC","u":1718020800},{"s":2,"f":"x.cpp","i":1,"m":"bad","h":"host","c":"c","u":1}]';
    expect((await dispatchPluginCall(logger, { status: 'true', log: batch })).status.code).toBe(0);
    await dispatchPluginCall(logger, { string: '{"name":"q"}', category: 'event' });
    await dispatchPluginCall(logger, { snapshot: '{"name":"s"}' });
    expect(got.inits).toEqual(['osqueryd']);
    expect(got.statuses.map((s) => [s.s, s.m])).toEqual([
      [0, 'hello'],
      [2, 'bad'],
    ]);
    expect(JSON.parse(got.raw[0]!)).toEqual(JSON.parse(batch)[0]);
    expect(got.strings).toEqual([
      ['string', '{"name":"q"}'],
      ['snapshot', '{"name":"s"}'],
    ]);
    // Legacy object form with "" keys.
    await dispatchPluginCall(logger, { status: 'true', log: '{"":{"s":1,"m":"old"}}' });
    expect(got.statuses.at(-1)!.m).toBe('old');
    // A bad batch is an error status, not a crash.
    expect((await dispatchPluginCall(logger, { status: 'true', log: '[{' })).status.code).toBe(1);
  });

  it('config: genConfig returns one row of sources; genPack; errors become code 1', async () => {
    let fail = false;
    const config: ConfigPlugin = {
      kind: 'config',
      name: 'kolide_grpc',
      genConfig: async () => {
        if (fail) throw new Error('backend down and no cache');
        return { config: '{"schedule":{}}' };
      },
      genPack: async (name) => `{"queries":{"${name}":{"query":"select 1","interval":10}}}`,
    };
    const ok = await dispatchPluginCall(config, { action: 'genConfig' });
    expect(ok.response).toEqual([{ config: '{"schedule":{}}' }]);
    const pack = await dispatchPluginCall(config, { action: 'genPack', name: 'p', value: 'x' });
    expect(Object.keys(pack.response[0]!)).toEqual(['p']);
    fail = true;
    const bad = await dispatchPluginCall(config, { action: 'genConfig' });
    expect(bad.status).toMatchObject({ code: 1, message: 'backend down and no cache' });
  });

  it('distributed: getQueries as {"results": JSON} and writeResults parsed with statuses and messages', async () => {
    let written: DistributedResults | undefined;
    const dist: DistributedPlugin = {
      kind: 'distributed',
      name: 'kolide_grpc',
      getQueries: async () => ({ queries: { q1: 'select 1' }, discovery: { q1: 'select 1 where 1' }, accelerate: 60 }),
      writeResults: async (r) => void (written = r),
    };
    const q = await dispatchPluginCall(dist, { action: 'getQueries' });
    expect(JSON.parse(q.response[0]!.results!)).toEqual({
      queries: { q1: 'select 1' },
      discovery: { q1: 'select 1 where 1' },
      accelerate: 60,
    });
    const payload = {
      queries: { q1: [{ a: 1, b: null }], q2: [] },
      statuses: { q1: 0, q2: '1' },
      messages: { q2: 'no such table: foo' },
      stats: { q1: { wall_time_ms: 3 } },
    };
    await dispatchPluginCall(dist, { action: 'writeResults', results: JSON.stringify(payload) });
    expect(written).toEqual({
      queries: { q1: [{ a: '1', b: '' }], q2: [] },
      statuses: { q1: 0, q2: 1 },
      messages: { q2: 'no such table: foo' },
      stats: { q1: { wall_time_ms: 3 } },
    });
  });

  it('parses current and legacy query contexts', () => {
    const cur = parseQueryContext('{"constraints":[{"name":"id","list":[{"op":2,"expr":"a"},{"op":2,"expr":"b"}],"affinity":"TEXT"}]}');
    expect(equalityValues(cur, 'id')).toEqual(['a', 'b']);
    const legacy = parseQueryContext(
      '{"constraints":[{"name":"id","list":"","affinity":"TEXT"},{"name":"n","list":[{"op":"2","expr":"5"}],"affinity":"INTEGER"}]}',
    );
    expect(equalityValues(legacy, 'id')).toBeUndefined();
    expect(equalityValues(legacy, 'n')).toEqual(['5']);
    expect(parseQueryContext('not json')).toEqual({ constraints: [] });
  });
});
