// Issue 3: osqueryd-sim's query() and getQueryColumns() answer like osqueryd (docs/protocol/osquery-extensions.md#queries), over real core tables.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtensionStatusError, type ExtensionManagerClient } from '../../src/osquery/client.js';
import { SimHarness, type SimPaths, type SimProcess } from './helpers.js';

let h: SimHarness;
let p: SimPaths;
let sim: SimProcess;
let client: ExtensionManagerClient;

beforeAll(async () => {
  h = new SimHarness();
  p = h.paths();
  ({ sim, client } = await h.start(p, ['--nullvalue=NULL']));
});
afterAll(async () => {
  await h.cleanup();
});

async function sqlError(sql: string): Promise<string> {
  const err = await client.query(sql).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ExtensionStatusError);
  expect((err as ExtensionStatusError).status.code).toBe(1);
  return (err as ExtensionStatusError).status.message;
}

describe('query()', () => {
  it('renders every value as a string: integers, REAL with 15 digits and a forced .0, NULL as --nullvalue', async () => {
    const [row] = await client.query(
      "select 1.0 as a, 3.14159265358979 as b, 1e20 as c, 0.1 + 0.2 as d, 100.0 / 3 as e, 1e-5 as f, -2.5 as g, 9007199254740993 as h, null as i, x'41' as j, 'text' as k",
    );
    expect(row).toEqual({
      a: '1.0',
      b: '3.14159265358979',
      c: '1e+20.0',
      d: '0.3',
      e: '33.3333333333333',
      f: '1e-05.0',
      g: '-2.5',
      h: '9007199254740993',
      i: 'NULL',
      j: 'A',
      k: 'text',
    });
    expect(Object.keys(row!)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k']);
  });

  it('collapses duplicate column names, sorts keys, runs several statements', async () => {
    expect(await client.query('select 2 as z, 1 as x, 3 as x')).toEqual([{ x: '3', z: '2' }]);
    expect(Object.keys((await client.query('select 2 as z, 1 as a'))[0]!)).toEqual(['a', 'z']);
    expect(await client.query('select 1 as n; select 2 as n;')).toEqual([{ n: '1' }, { n: '2' }]);
    expect(await client.query('')).toEqual([]);
  });

  it("fails with SQLite's message", async () => {
    expect(await sqlError('selec 1')).toBe('near "selec": syntax error');
    expect(await sqlError('select * from foo')).toBe('no such table: foo');
    expect(await sqlError('select bar from osquery_info')).toBe('no such column: bar');
  });

  it('serves core tables from this machine and the daemon', async () => {
    const [info] = await client.query('select pid, version, extensions, watcher, config_valid, build_platform from osquery_info');
    expect(info).toEqual({
      build_platform: 'linux',
      config_valid: '0',
      extensions: 'active',
      pid: String(sim.pid),
      version: '5.12.1-sim',
      watcher: '-1',
    });
    const [me] = await client.query(`select pid, parent, cmdline, uid, state from processes where pid = ${sim.pid}`);
    expect(me!.pid).toBe(String(sim.pid));
    expect(me!.parent).toBe(String(process.pid));
    expect(me!.cmdline).toContain('osqueryd-sim');
    expect(Number(me!.uid)).toBe(process.getuid!());
    expect(Number((await client.query('select count(*) as n from processes'))[0]!.n)).toBeGreaterThan(1);
    expect(await client.query('select username, directory from users where uid = 0')).toEqual([{ directory: '/root', username: 'root' }]);
    const [time] = await client.query('select unix_time, timezone from time');
    expect(time!.timezone).toBe('UTC');
    expect(Math.abs(Number(time!.unix_time) - Date.now() / 1000)).toBeLessThan(120);
    expect((await client.query('select arch from os_version'))[0]!.arch).toBe(
      process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch,
    );
    expect((await client.query('select total_seconds from uptime'))[0]!.total_seconds).toMatch(/^\d+$/);
    expect((await client.query('select cpu_logical_cores from system_info'))[0]!.cpu_logical_cores).toMatch(/^[1-9]\d*$/);
    expect(
      await client.query(
        "select registry, name, owner_uuid, active from osquery_registry where (registry = 'config' and name = 'filesystem') or (registry = 'table' and name = 'processes') order by registry",
      ),
    ).toEqual([
      { active: '1', name: 'filesystem', owner_uuid: '0', registry: 'config' },
      { active: '0', name: 'processes', owner_uuid: '0', registry: 'table' },
    ]);
  });

  it('records each executed statement in <database_path>.queries.log', async () => {
    await client.query("select 'logged' as x");
    const last = h.queryLog(p).at(-1)!;
    expect(last).toMatchObject({ source: 'query', name: '', sql: "select 'logged' as x" });
    expect(Math.abs(last.t - Date.now())).toBeLessThan(60_000);
  });
});

describe('getQueryColumns()', () => {
  it('returns one {name: type} per result column, declared types from the schema, UNKNOWN for expressions', async () => {
    expect(await client.getQueryColumns('select pid, name, resident_size, 1 + 1 as two, pid as pid from processes')).toEqual([
      { name: 'pid', type: 'BIGINT' },
      { name: 'name', type: 'TEXT' },
      { name: 'resident_size', type: 'BIGINT' },
      { name: 'two', type: 'UNKNOWN' },
      { name: 'pid', type: 'BIGINT' },
    ]);
    const err = await client.getQueryColumns('select * from nope').then(
      () => undefined,
      (e: unknown) => e as ExtensionStatusError,
    );
    expect(err?.status).toEqual({ code: 1, message: 'no such table: nope', uuid: 0 });
  });
});
