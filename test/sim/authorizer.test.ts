// Issue 13: the stand-in refuses what osqueryd's SQLite authorizer refuses (ATTACH, DETACH) and, stricter, anything
// but a read, on its manager socket (Thrift query / getQueryColumns) and through the `sql` plugin. A real SQLite file
// plays the supervisor's launcher.sqlite; after every attack it is unchanged and no file was created.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtensionStatusError, type ExtensionManagerClient } from '../../src/osquery/client.js';
import { NOT_AUTHORIZED, snapshotDatabase, sqlAttacks, type DatabaseSnapshot } from '../helpers/sql-attacks.js';
import { SimHarness, type SimPaths } from './helpers.js';

let h: SimHarness;
let p: SimPaths;
let client: ExtensionManagerClient;
let victim: string;
let fresh: string;
let before: DatabaseSnapshot;

beforeAll(async () => {
  h = new SimHarness();
  p = h.paths();
  victim = join(h.dir, 'victim', 'launcher.sqlite');
  fresh = join(h.dir, 'victim', 'created-by-attack.sqlite');
  mkdirSync(join(h.dir, 'victim'));
  const db = new Database(victim);
  db.exec(`CREATE TABLE registrations (id TEXT PRIMARY KEY, enroll_secret TEXT);
           CREATE TABLE node_keys_registrations (registration_id TEXT PRIMARY KEY, node_key TEXT);
           CREATE TABLE log_buffer_entries (id INTEGER PRIMARY KEY, registration_id TEXT, data TEXT);
           INSERT INTO registrations VALUES ('kolide', 'vendor-secret'), ('acme', 'acme-secret');
           INSERT INTO node_keys_registrations VALUES ('kolide', 'vendor-node-key');
           INSERT INTO log_buffer_entries (registration_id, data) VALUES ('kolide', 'vendor log');`);
  db.close();
  before = snapshotDatabase(victim);
  ({ client } = await h.start(p));
});
afterAll(async () => {
  await h.cleanup();
});

async function refusal(run: () => Promise<unknown>): Promise<{ code: number; message: string }> {
  const err = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ExtensionStatusError)) throw new Error(`expected a refusal, got ${err === undefined ? 'rows' : String(err)}`);
  return { code: err.status.code, message: err.status.message };
}

describe('the stand-in refuses everything but a read', () => {
  const attacks = sqlAttacks('VICTIM', 'FRESH').map((a) => [a.name, a.sql, a.message] as const);
  const fill = (template: string) => template.replace('VICTIM', victim).replace('FRESH', fresh);

  it.each(attacks)('query(): %s', async (_name, template, message) => {
    expect(await refusal(() => client.query(fill(template)))).toEqual({ code: 1, message });
  });

  it.each(attacks)('getQueryColumns(): %s', async (_name, template, message) => {
    const sql = fill(template);
    // getQueryColumns compiles the first statement only, as osqueryd; the `;`-joined attack's first one is a harmless read.
    if (sql.startsWith('select 1 as one;')) return;
    expect(await refusal(() => client.getQueryColumns(sql))).toEqual({ code: 1, message });
  });

  it('the sql plugin (call sql/sql) refuses too', async () => {
    const res = await client.call('sql', 'sql', {
      action: 'query',
      query: `attach database '${victim}' as x; select * from x.registrations`,
    });
    expect(res.status.code).toBe(1);
    expect(res.status.message).toBe(NOT_AUTHORIZED);
    expect(res.response).toEqual([]);
  });

  it('after the attacks the victim database is unchanged and no file was created', () => {
    expect(snapshotDatabase(victim)).toEqual(before);
    expect(existsSync(fresh)).toBe(false);
  });

  it('reads still work: core tables, several statements, CTEs, recursive CTEs, read-only pragmas, JSON', async () => {
    expect(await client.query('select 1 as n; select 2 as n')).toEqual([{ n: '1' }, { n: '2' }]);
    expect(Number((await client.query('select unix_time from time'))[0]!.unix_time)).toBeGreaterThan(0);
    expect(await client.query('with x(v) as (select 5) select v from x')).toEqual([{ v: '5' }]);
    expect(await client.query('with recursive c(x) as (select 1 union all select x + 1 from c where x < 3) select x from c')).toEqual([
      { x: '1' },
      { x: '2' },
      { x: '3' },
    ]);
    expect((await client.query('pragma table_info(time)')).map((r) => r.name)).toContain('unix_time');
    expect(await client.query("select name from pragma_table_info('time') where name = 'unix_time'")).toEqual([{ name: 'unix_time' }]);
    expect(await client.query(`select json_extract('{"a":7}', '$.a') as a`)).toEqual([{ a: '7' }]);
    expect(await client.getQueryColumns('select unix_time from time')).toEqual([{ name: 'unix_time', type: 'INTEGER' }]);
  });

  it('a PRAGMA write is refused before it takes effect (soft_heap_limit would apply at prepare time)', async () => {
    expect(await refusal(() => client.query('pragma soft_heap_limit = 1'))).toEqual({ code: 1, message: NOT_AUTHORIZED });
    // Its getter is not on the allowlist either; the engine still answers normally.
    expect(await refusal(() => client.query('pragma soft_heap_limit'))).toEqual({ code: 1, message: NOT_AUTHORIZED });
    expect(await client.query('select 42 as n')).toEqual([{ n: '42' }]);
  });

  // Issue 13 (review after the fix): one query must not make SQLite hold a gigabyte (WASM memory never shrinks),
  // dbstat is internal like sqlite_dbpage, and nothing after a NUL byte exists (osqueryd passes SQLite a C string).
  it('bounds the values a query may build, refuses dbstat, and ignores everything after a NUL byte', async () => {
    const big = await refusal(() => client.query('select length(zeroblob(1000000000)) as n'));
    expect(big).toEqual({ code: 1, message: 'string or blob too big' });
    expect(await client.query('select length(zeroblob(1000000)) as n')).toEqual([{ n: '1000000' }]);
    expect(await refusal(() => client.query('select * from dbstat'))).toEqual({
      code: 1,
      message: expect.stringContaining('access to dbstat'),
    });
    expect(await client.query('select 1 as n\u0000; select 2 as m')).toEqual([{ n: '1' }]);
  });
});
