// Issue 16: one run's query quarantine (extensions/kolide_grpc/quarantine.ts) over a real SQLite store and log
// buffer: who is a suspect, what reaches osqueryd, what the served config keeps, and configs an attacker shapes.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type SqliteDatabase } from '../../src/store/database.js';
import { LogBuffer } from '../../src/store/log-buffer.js';
import { QuarantineStore } from '../../src/store/quarantine.js';
import { QueryQuarantine, type QuarantineSettings } from '../../extensions/kolide_grpc/quarantine.js';
import { silentLogger } from '../../src/log/logger.js';
import { shortTempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/tmp.js';

const settings: QuarantineSettings = {
  enabled: true,
  queryTimeoutMs: 60_000,
  policy: { incidents: 2, windowMs: 24 * 3600_000, ttlMs: 7 * 24 * 3600_000 },
};

let tmp: { dir: string; cleanup: () => void };
let db: SqliteDatabase;
let store: QuarantineStore;
let buffer: LogBuffer;
let now: number;
const live: QueryQuarantine[] = [];
const ended: Error[] = [];

function run(reg = 'acme', s: QuarantineSettings = settings): QueryQuarantine {
  const q = new QueryQuarantine({
    registrationId: reg,
    store,
    settings: s,
    buffer,
    log: silentLogger(),
    endRun: (e) => ended.push(e),
    clock: () => now,
  });
  live.push(q);
  return q;
}

const config = (schedule: Record<string, unknown>, extra: Record<string, unknown> = {}) => JSON.stringify({ schedule, ...extra });
const statusLines = (reg: string) =>
  buffer
    .readBatch(reg, 'status', { limitBytes: 10_000_000 })
    .logs.map((e) => (JSON.parse(e.data) as { m: string }).m)
    .filter(Boolean);

beforeEach(() => {
  tmp = shortTempDir('qx');
  db = openDatabase(join(tmp.dir, 'l.db'));
  store = new QuarantineStore(db);
  buffer = new LogBuffer(db, { cap: 1000 });
  now = 1_800_000_000_000;
  ended.length = 0;
});

afterEach(() => {
  for (const q of live.splice(0)) q.stop();
  db.close();
  tmp.cleanup();
});

async function crash(q: QueryQuarantine, lastScheduled?: string, at = now) {
  return q.runEnded({ cause: 'crashed', endedAt: now, ...(lastScheduled ? { lastScheduled: { text: lastScheduled, at } } : {}) });
}

describe('QueryQuarantine', () => {
  // Review: osqueryd never answers a query whose discovery found nothing; asking for new work ends the batch.
  it('a query osqueryd left unanswered is no suspect once osqueryd asks for new work (discovery-gated)', async () => {
    const q = run();
    q.handOut({ gated: 'select 1' }, { gated: 'select 1 where 0' });
    q.batchEnded();
    expect(await crash(q)).toBeUndefined();
    expect(db.prepare('select count(*) as n from quarantine_incidents').get()).toEqual({ n: 0 });
  });

  // Review: a backend handing out a huge batch must not make one incident write without bound.
  it('at most 32 suspects are recorded per incident; the note counts the rest and stays short', async () => {
    const q = run();
    const batch: Record<string, string> = {};
    for (let i = 0; i < 5000; i++) batch[`q${i}`] = `select ${i} -- ${'x'.repeat(100)}`;
    q.handOut(batch, undefined);
    const note = (await crash(q))!;
    expect(note).toContain('4968 more queries of the batch were in flight and not recorded');
    expect(note.length).toBeLessThanOrEqual(2_001);
    expect(db.prepare('select count(*) as n from quarantine_incidents').get()).toEqual({ n: 32 });
  });

  it('in-flight distributed queries are suspects of a crash; answered ones and requested stops are not', async () => {
    const r1 = run();
    r1.handOut({ a: 'select 1', b: 'select 2' }, undefined);
    r1.answered(['b']);
    expect(await crash(r1)).toBe('quarantine: suspect distributed query a (incident 1 of 2)');
    const r2 = run();
    r2.handOut({ c: 'select 1' }, undefined);
    expect(await r2.runEnded({ cause: 'requested', endedAt: now })).toBeUndefined();
    const r3 = run();
    r3.handOut({ d: 'select 1' }, undefined);
    expect(await r3.runEnded({ cause: 'oom_killed', endedAt: now })).toMatch(
      /distributed query d quarantined after 2 incidents \(release: [0-9a-f]{12}\)/,
    );
    // The next run refuses it with a failed result and does not hand it to osqueryd; the other query still goes.
    const r4 = run();
    const out = r4.handOut({ e: 'select 1', f: 'select 2' }, { e: 'select 1 from time', f: 'select 1 from time' });
    expect(out.queries).toEqual({ f: 'select 2' });
    expect(out.discovery).toEqual({ f: 'select 1 from time' });
    expect(out.refused).toHaveLength(1);
    expect(out.refused[0]).toMatchObject({ query_name: 'e', status: 1, rows: [] });
    expect(out.refused[0]!.message).toMatch(/^quarantined by osquery-launcher on registration acme: 2 incidents/);
    // The same SQL on another registration runs.
    expect(run('globex').handOut({ g: 'select 1' }, undefined).queries).toEqual({ g: 'select 1' });
    expect(statusLines('acme').some((m) => m.includes('distributed query d (select 1) is quarantined on registration acme'))).toBe(true);
  });

  it('the last scheduled query is a suspect only if it was served, recent, and no distributed query came after it', async () => {
    const served = config({ boom: { query: 'select 9', interval: 1 }, 'odd: name': { query: 'select 8\nfrom time', interval: 1 } });
    // Not served in this run: a line naming it blames nothing.
    const r0 = run();
    r0.filterConfig(config({}));
    expect(await crash(r0, 'boom: select 9')).toBeUndefined();
    // Too old.
    const r1 = run();
    r1.filterConfig(served);
    expect(await crash(r1, 'boom: select 9', now - 61_000)).toBeUndefined();
    // A distributed query was handed out after it started: only that one is a suspect.
    const r2 = run();
    r2.filterConfig(served);
    now += 10;
    r2.handOut({ d1: 'select 7' }, undefined);
    expect(await crash(r2, 'boom: select 9', now - 5)).toBe('quarantine: suspect distributed query d1 (incident 1 of 2)');
    // Names with ": " and multi-line SQL (only its first line is on the glog line).
    const r3 = run();
    r3.filterConfig(served);
    expect(await crash(r3, 'odd: name: select 8')).toBe('quarantine: suspect scheduled query odd: name (incident 1 of 2)');
    const r4 = run();
    r4.filterConfig(served);
    expect(await crash(r4, 'odd: name: select 8')).toMatch(/scheduled query odd: name quarantined after 2 incidents/);
    // It is left out of the next config, with one status log per run; the other query stays.
    const r5 = run();
    const next = JSON.parse(r5.filterConfig(served)) as { schedule: Record<string, unknown>; options: Record<string, unknown> };
    r5.filterConfig(served);
    expect(Object.keys(next.schedule)).toEqual(['boom']);
    expect(next.options.schedule_lognames).toBe(true);
    expect(statusLines('acme').filter((m) => m.includes('scheduled query odd: name is quarantined'))).toHaveLength(1);
  });

  it('pack queries are matched by their full name (pack delimiter from the options)', async () => {
    const packs = config({}, { options: { pack_delimiter: ':' }, packs: { p1: { queries: { q1: { query: 'select 5', interval: 1 } } } } });
    for (let i = 0; i < 2; i++) {
      const r = run();
      r.filterConfig(packs);
      await crash(r, 'pack:p1:q1: select 5');
    }
    const out = JSON.parse(run().filterConfig(packs)) as { packs: { p1: { queries: Record<string, unknown> } } };
    expect(out.packs.p1.queries).toEqual({});
  });

  it('configs that are not what they seem pass through or are filtered without throwing', () => {
    const r = run();
    for (const text of [
      '',
      'not json',
      '[]',
      'null',
      '{"options": []}',
      '{"schedule": []}',
      '{"schedule": {"x": "y"}}',
      '{"packs": {"p": "str"}}',
    ])
      expect(() => r.filterConfig(text)).not.toThrow();
    expect(r.filterConfig('not json')).toBe('not json');
    expect(r.filterConfig('{"options": []}')).toBe('{"options": []}');
    // __proto__ as a query name stays a plain key (not the prototype), and is served.
    const out = r.filterConfig('{"schedule": {"__proto__": {"query": "select 1", "interval": 1}}}');
    expect(Object.keys(JSON.parse(out).schedule)).toEqual(['__proto__']);
  });

  it('a distributed query past its deadline ends the run once and is a suspect', async () => {
    const r = run('acme', { ...settings, queryTimeoutMs: 200 });
    r.handOut({ slow: `select 'hang'` }, undefined);
    now += 250;
    await waitFor(() => ended.length > 0, 5_000, 'endRun');
    expect(ended).toHaveLength(1);
    expect(ended[0]!.message).toMatch(/distributed query slow \(select 'hang'\) got no result within 0 s/);
    expect(await r.runEnded({ cause: 'extension', endedAt: now })).toBe('quarantine: suspect distributed query slow (incident 1 of 2)');
    expect(ended).toHaveLength(1);
  });

  it('disabled: nothing is tracked, filtered or recorded', async () => {
    const r = run('acme', { ...settings, enabled: false });
    expect(r.handOut({ a: 'select 1' }, undefined).queries).toEqual({ a: 'select 1' });
    expect(r.filterConfig(config({ a: { query: 'select 1' } }))).toBe(config({ a: { query: 'select 1' } }));
    expect(await crash(r)).toBeUndefined();
    expect(store.list()).toEqual([]);
  });
});
