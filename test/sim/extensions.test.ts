// Issue 3: osqueryd-sim's extension manager: registration rules and messages, extension tables, the watcher.
import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExtensionStatusError, type ExtensionManagerClient } from '../../src/osquery/client.js';
import { ExtensionServer } from '../../src/osquery/extension-server.js';
import type { Plugin, QueryContext, Row, TablePlugin } from '../../src/osquery/plugins.js';
import { ExtensionProcessor, status } from '../../src/osquery/protocol.js';
import { ThriftServer } from '../../src/osquery/server.js';
import { SimHarness, waitFor, type SimPaths, type SimProcess } from './helpers.js';

let h: SimHarness;
let p: SimPaths;
let sim: SimProcess;
let client: ExtensionManagerClient;

beforeEach(async () => {
  h = new SimHarness();
  p = h.paths();
  ({ sim, client } = await h.start(p));
});
afterEach(async () => {
  await h.cleanup();
});

function animals(contexts: QueryContext[]): TablePlugin {
  return {
    kind: 'table',
    name: 'sim_animals',
    columns: [
      { name: 'name', type: 'TEXT' },
      { name: 'legs', type: 'INTEGER' },
      { name: 'weight', type: 'DOUBLE' },
    ],
    generate(ctx): Row[] {
      contexts.push(ctx);
      return [
        { name: 'cat', legs: '4', weight: '4.5' },
        { name: 'bird', legs: '2', weight: '0.25' },
        { name: 'snake', legs: '0' },
      ];
    },
  };
}

async function startExtension(name: string, plugins: Plugin[]): Promise<ExtensionServer> {
  const ext = new ExtensionServer({ name, managerPath: p.socket, plugins, pingIntervalMs: 0 });
  h.defer(() => ext.stop());
  await ext.start();
  return ext;
}

const failure = async (promise: Promise<unknown>) => {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ExtensionStatusError);
  return (err as ExtensionStatusError).status;
};

describe('extension tables', () => {
  it('queries an extension table through query(), passing WHERE constraints in generate context', async () => {
    const contexts: QueryContext[] = [];
    const ext = await startExtension('zoo', [animals(contexts)]);
    expect(await client.query("select name, legs from sim_animals where name = 'cat'")).toEqual([{ legs: '4', name: 'cat' }]);
    expect(contexts[0]!.constraints).toEqual([
      { name: 'name', affinity: 'TEXT', list: [{ op: 2, expr: 'cat' }] },
      { name: 'legs', affinity: 'INTEGER', list: [] },
      { name: 'weight', affinity: 'DOUBLE', list: [] },
    ]);
    expect(contexts[0]!.colsUsed).toEqual(['name', 'legs']);
    // IN arrives as several EQUALS entries; a range on a number column is passed, SQLite re-filters.
    expect(await client.query("select name from sim_animals where name in ('cat', 'snake') and legs > 1")).toEqual([{ name: 'cat' }]);
    expect(contexts[1]!.constraints[0]!.list).toEqual([
      { op: 2, expr: 'cat' },
      { op: 2, expr: 'snake' },
    ]);
    expect(contexts[1]!.constraints[1]!.list).toEqual([{ op: 4, expr: '1' }]);
    // Missing values are NULL (rendered as --nullvalue ""), DOUBLE with 15 digits and a forced .0.
    expect(await client.query('select weight, typeof(weight) as t from sim_animals order by name')).toEqual([
      { t: 'real', weight: '0.25' },
      { t: 'real', weight: '4.5' },
      { t: 'null', weight: '' },
    ]);
    // Joined like any table.
    const joined = await client.query('select a.name, i.version from sim_animals a join osquery_info i where a.legs = 2');
    expect(joined).toEqual([{ name: 'bird', version: '5.12.1-sim' }]);
    expect(await client.getQueryColumns('select name, legs, weight, legs * 2 from sim_animals')).toEqual([
      { name: 'name', type: 'TEXT' },
      { name: 'legs', type: 'INTEGER' },
      { name: 'weight', type: 'DOUBLE' },
      { name: 'legs * 2', type: 'UNKNOWN' },
    ]);
    expect(ext.callCounts.table).toBeGreaterThanOrEqual(4);
  });

  it('passes only constraints that filter the scan, so an extension honouring them returns the right rows', async () => {
    const contexts: QueryContext[] = [];
    const all = [
      { name: 'cat', legs: '4' },
      { name: 'bird', legs: '2' },
      { name: 'snake', legs: '0' },
    ];
    await startExtension('filtering', [
      {
        kind: 'table',
        name: 'sim_pets',
        columns: [
          { name: 'name', type: 'TEXT' },
          { name: 'legs', type: 'INTEGER' },
        ],
        generate(ctx) {
          contexts.push(ctx);
          const wanted = ctx.constraints
            .find((c) => c.name === 'name')!
            .list.filter((c) => c.op === 2)
            .map((c) => c.expr);
          return wanted.length > 0 ? all.filter((r) => wanted.includes(r.name)) : all;
        },
      },
    ]);
    const names = async (sql: string) => (await client.query(sql)).map((r) => r.name).sort();
    const cases: Array<[string, string[], string[]]> = [
      ["select name from sim_pets where name = 'cat'", ['cat'], ['cat']],
      ["select name from sim_pets where not (name = 'cat')", ['bird', 'snake'], []],
      ["select name from sim_pets where name = 'cat' or legs = 0", ['cat', 'snake'], []],
      ["select name from sim_pets where case when (name = 'cat') then 0 else 1 end", ['bird', 'snake'], []],
      ["select name from sim_pets where legs > (select count(*) from osquery_info where sim_pets.name = 'bird')", ['bird', 'cat'], []],
      ["select p.name from osquery_info i join sim_pets p on p.name in ('snake', 'bird')", ['bird', 'snake'], ['snake', 'bird']],
    ];
    for (const [sql, expected, pushed] of cases) {
      expect(await names(sql), sql).toEqual(expected);
      expect(
        contexts.at(-1)!.constraints[0]!.list.map((c) => c.expr),
        sql,
      ).toEqual(pushed);
    }
  });

  it('fails the query with the extension status message when generate fails', async () => {
    await startExtension('broken', [
      {
        kind: 'table',
        name: 'sim_broken',
        columns: [{ name: 'x', type: 'TEXT' }],
        generate: () => {
          throw new Error('backend unavailable');
        },
      },
    ]);
    expect((await failure(client.query('select * from sim_broken'))).message).toBe('backend unavailable');
  });
});

describe('registration', () => {
  it('lists registered extensions by uuid (core omitted) and in osquery_extensions (core included)', async () => {
    const ext = await startExtension('lister', []);
    const list = await client.extensions();
    expect([...list.entries()]).toEqual([[ext.uuid, { name: 'lister', version: '', sdk_version: '', min_sdk_version: '' }]]);
    expect(ext.uuid).toBeGreaterThan(0);
    expect(ext.uuid).toBeLessThan(65536);
    expect(await client.query('select uuid, name, path, type from osquery_extensions order by uuid')).toEqual([
      { name: 'core', path: p.socket, type: 'core', uuid: '0' },
      { name: 'lister', path: `${p.socket}.${ext.uuid}`, type: 'extension', uuid: String(ext.uuid) },
    ]);
  });

  it("applies osqueryd's checks in order with its exact messages", async () => {
    await startExtension('first', [{ kind: 'table', name: 'sim_first', columns: [{ name: 'x', type: 'TEXT' }], generate: () => [] }]);
    const reg = (name: string, registry: Record<string, Record<string, Array<Record<string, string>>>>, sdk = '') =>
      failure(client.registerExtension({ name, sdk_version: sdk }, registry));
    expect(await reg('first', {})).toEqual({ code: 1, message: 'Duplicate extension registered', uuid: 0 });
    expect(await reg('old', {}, '1.0.0')).toEqual({ code: 1, message: 'Incompatible extension SDK version', uuid: 0 });
    const conflict = 'Failed adding registry: Registry item processes conflicts with another item of the same name.';
    expect((await reg('c1', { table: { processes: [{ id: 'column', name: 'x', type: 'TEXT', op: '0' }] } })).message).toBe(conflict);
    expect((await reg('c2', { table: { sim_first: [{ id: 'column', name: 'x', type: 'TEXT', op: '0' }] } })).message).toBe(
      'Failed adding registry: Registry item sim_first conflicts with another item of the same name.',
    );
    expect((await reg('c3', { logger: { filesystem: [] } })).message).toBe(
      'Failed adding registry: Registry item filesystem conflicts with another item of the same name.',
    );
    expect((await reg('c4', { foo: { bar: [] } })).message).toBe('Failed adding registry: Unknown registry: foo');
    expect((await reg('c5', { table: { sim_empty: [] } })).message).toBe('Failed adding registry: Invalid route info');
    // Passing versions: empty, 0.0.0 and >= 1.7.7.
    for (const [name, sdk] of [
      ['s1', '0.0.0'],
      ['s2', '1.7.7'],
      ['s3', '3.0.7'],
    ] as const) {
      expect(await client.registerExtension({ name, sdk_version: sdk }, { config: {} })).toBeGreaterThan(0);
    }
  });

  it('deregisters: unknown uuid fails, a known one drops its tables and answers uuid 0', async () => {
    expect(await failure(client.deregisterExtension(4242))).toEqual({ code: 1, message: 'No extension UUID found', uuid: 0 });
    const ext = await startExtension('leaving', [animals([])]);
    await client.deregisterExtension(ext.uuid);
    expect((await client.extensions()).size).toBe(0);
    expect((await failure(client.query('select * from sim_animals'))).message).toBe('no such table: sim_animals');
  });

  it('the watcher removes an extension whose socket never answers, with its tables', async () => {
    const uuid = await client.registerExtension(
      { name: 'ghost' },
      { table: { sim_ghost: [{ id: 'column', name: 'x', type: 'TEXT', op: '0' }] } },
    );
    expect([...(await client.extensions()).keys()]).toEqual([uuid]);
    await sim.waitForStderr(new RegExp(`Extension UUID ${uuid} has gone away`), 15_000);
    expect((await client.extensions()).size).toBe(0);
    expect((await failure(client.query('select * from sim_ghost'))).message).toBe('no such table: sim_ghost');
  });

  it('the watcher pings each extension and removes it once it stops answering', async () => {
    const uuid = await client.registerExtension({ name: 'short_lived' }, { config: { short_cfg: [] } });
    let pings = 0;
    const server = new ThriftServer(
      `${p.socket}.${uuid}`,
      () =>
        new ExtensionProcessor({
          ping: () => {
            pings++;
            return status(0, 'OK', uuid);
          },
          call: () => ({ status: status(1, 'no'), response: [] }),
          shutdown: () => undefined,
        }),
    );
    h.defer(() => server.close());
    await server.listen();
    await waitFor(() => pings >= 2, 10_000, 'two watcher pings');
    expect((await client.extensions()).has(uuid)).toBe(true);
    await server.close(); // gone without deregistering, as a crashed extension
    await sim.waitForStderr(new RegExp(`Extension UUID ${uuid} has gone away`), 10_000);
    expect((await client.extensions()).has(uuid)).toBe(false);
    expect((await client.query("select count(*) as n from osquery_registry where name = 'short_cfg'"))[0]!.n).toBe('0');
  });

  it('reaches an extension plugin as osqueryd does: a ping, then the call', async () => {
    const uuid = await client.registerExtension(
      { name: 'raw' },
      { table: { sim_raw: [{ id: 'column', name: 'x', type: 'TEXT', op: '0' }] } },
    );
    const seen: string[] = [];
    const server = new ThriftServer(
      `${p.socket}.${uuid}`,
      () =>
        new ExtensionProcessor({
          ping: () => {
            seen.push('ping');
            return status(0, 'OK', uuid);
          },
          call: (registry, item, request) => {
            seen.push(`call ${registry} ${item} ${request.action}`);
            return { status: status(0, 'OK'), response: [{ x: 'hello' }] };
          },
          shutdown: () => undefined,
        }),
    );
    h.defer(() => server.close());
    await server.listen();
    expect(await client.query('select x from sim_raw')).toEqual([{ x: 'hello' }]);
    const call = seen.indexOf('call table sim_raw generate');
    expect(call).toBeGreaterThan(0);
    expect(seen[call - 1]).toBe('ping');
  });

  it('call() runs core registry plugins; an empty item falls back to the active plugin', async () => {
    writeFileSync(p.configPath, '{"schedule": {}}');
    const res = await client.call('config', '', { action: 'genConfig' });
    expect(res.status).toEqual({ code: 0, message: 'OK', uuid: 0 });
    expect(res.response).toEqual([{ [p.configPath]: '{"schedule": {}}' }]);
    const table = await client.call('table', 'osquery_info', { action: 'generate', context: '{"constraints":[]}' });
    expect(table.response[0]!.version).toBe('5.12.1-sim');
    const missing = await client.call('nope', 'x', {});
    expect(missing.status.code).toBe(1);
  });
});
