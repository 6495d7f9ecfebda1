// Issue 16: the quarantine store on a real SQLite file: the incident window, the TTL, release, registration
// boundaries, and names/SQL an attacker controls (they are data, never SQL).
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type SqliteDatabase } from '../../src/store/database.js';
import { QuarantineStore, sqlHash, type QuarantinePolicy } from '../../src/store/quarantine.js';
import { shortTempDir } from '../helpers/tmp.js';

const HOUR = 3600_000;
const policy: QuarantinePolicy = { incidents: 2, windowMs: 24 * HOUR, ttlMs: 7 * 24 * HOUR };
const T0 = 1_800_000_000_000;

let tmp: { dir: string; cleanup: () => void };
let path: string;
let db: SqliteDatabase;

beforeEach(() => {
  tmp = shortTempDir('qs');
  path = join(tmp.dir, 'l.db');
  db = openDatabase(path);
});

afterEach(() => {
  if (db.open) db.close();
  tmp.cleanup();
});

describe('QuarantineStore', () => {
  it('quarantines after N incidents within the window, for that registration only, and keeps it across reopen', async () => {
    const s = new QuarantineStore(db);
    const q = { kind: 'distributed' as const, name: 'q1', sql: 'select 1' };
    expect(await s.recordIncident('acme', q, 'crashed', policy, T0)).toEqual({ incidents: 1 });
    expect(s.find('acme', 'distributed', '', 'select 1', T0)).toBeUndefined();
    const second = await s.recordIncident('acme', { ...q, name: 'q2' }, 'crashed', policy, T0 + HOUR);
    expect(second.incidents).toBe(2);
    expect(second.quarantined).toMatchObject({ registrationId: 'acme', kind: 'distributed', name: '', queryId: 'q2', incidents: 2 });
    expect(s.find('acme', 'distributed', '', 'select 1', T0 + HOUR)?.sqlHash).toBe(sqlHash('select 1'));
    // The same SQL elsewhere is not affected.
    expect(s.find('globex', 'distributed', '', 'select 1', T0 + HOUR)).toBeUndefined();
    db.close();
    db = openDatabase(path);
    const again = new QuarantineStore(db);
    expect(again.list(['acme'], T0 + 2 * HOUR).map((e) => e.sql)).toEqual(['select 1']);
    expect(again.list(['globex'], T0 + 2 * HOUR)).toEqual([]);
  });

  it('incidents outside the window do not add up', async () => {
    const s = new QuarantineStore(db);
    const q = { kind: 'scheduled' as const, name: 'boom', sql: 'select 2' };
    await s.recordIncident('acme', q, 'crashed', policy, T0);
    const later = await s.recordIncident('acme', q, 'crashed', policy, T0 + 25 * HOUR);
    expect(later).toEqual({ incidents: 1 });
    expect(s.list(undefined, T0 + 25 * HOUR)).toEqual([]);
  });

  it('scheduled queries are matched by name and SQL hash', async () => {
    const s = new QuarantineStore(db);
    const q = { kind: 'scheduled' as const, name: 'boom', sql: 'select 3' };
    await s.recordIncident('acme', q, 'crashed', policy, T0);
    await s.recordIncident('acme', q, 'crashed', policy, T0 + 1);
    expect(s.find('acme', 'scheduled', 'boom', 'select 3', T0 + 2)).toBeDefined();
    expect(s.find('acme', 'scheduled', 'boom', 'select 3 -- changed', T0 + 2)).toBeUndefined();
    expect(s.find('acme', 'scheduled', 'other', 'select 3', T0 + 2)).toBeUndefined();
    expect(s.find('acme', 'distributed', '', 'select 3', T0 + 2)).toBeUndefined();
  });

  it('a quarantine expires after its TTL', async () => {
    const s = new QuarantineStore(db);
    const q = { kind: 'distributed' as const, name: 'q', sql: 'select 4' };
    await s.recordIncident('acme', q, 'c', policy, T0);
    await s.recordIncident('acme', q, 'c', policy, T0 + 1);
    expect(s.list(['acme'], T0 + policy.ttlMs)).toHaveLength(1);
    expect(s.list(['acme'], T0 + 1 + policy.ttlMs)).toEqual([]);
    expect(s.find('acme', 'distributed', '', 'select 4', T0 + 1 + policy.ttlMs)).toBeUndefined();
    await s.recordIncident('acme', { ...q, sql: 'select 44' }, 'c', policy, T0);
    await s.purgeExpired(T0 + 2 + policy.ttlMs, policy.windowMs);
    expect(db.prepare('SELECT count(*) AS n FROM quarantine_entries').get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM quarantine_incidents').get()).toEqual({ n: 0 });
  });

  it('release by name, SQL hash prefix or SQL; never another registration’s; incidents start over', async () => {
    const s = new QuarantineStore(db);
    const sched = { kind: 'scheduled' as const, name: 'boom', sql: 'select 5' };
    const dist = { kind: 'distributed' as const, name: 'q', sql: 'select 6' };
    for (const q of [sched, dist])
      for (const reg of ['acme', 'globex']) for (let i = 0; i < 2; i++) await s.recordIncident(reg, q, 'c', policy, T0 + i);
    expect(s.list(undefined, T0 + 10)).toHaveLength(4);
    await expect(s.release('acme', 'nothing-like-it', T0 + 10)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(s.release('acme', '  ', T0 + 10)).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    // A too-short hash prefix matches nothing (it could name many queries).
    await expect(s.release('acme', sqlHash('select 6').slice(0, 4), T0 + 10)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect((await s.release('acme', 'boom', T0 + 10)).map((e) => e.name)).toEqual(['boom']);
    expect((await s.release('acme', sqlHash('select 6').slice(0, 12).toUpperCase(), T0 + 10)).map((e) => e.sql)).toEqual(['select 6']);
    expect(s.list(['acme'], T0 + 10)).toEqual([]);
    expect(s.list(['globex'], T0 + 10)).toHaveLength(2);
    expect((await s.release('globex', 'select 6', T0 + 10)).map((e) => e.kind)).toEqual(['distributed']);
    // After a release one new incident is not enough.
    expect((await s.recordIncident('acme', sched, 'c', policy, T0 + 20)).quarantined).toBeUndefined();
    await s.removeRegistration('globex');
    expect(s.list(['globex'], T0 + 20)).toEqual([]);
  });

  it('names and SQL are data: quotes, SQL, NUL bytes, unicode and huge texts round-trip without touching the schema', async () => {
    const s = new QuarantineStore(db);
    const nasty = ["x'); DROP TABLE quarantine_entries; --", 'a: b: c', 'nul\0byte', 'ünïcødé 🚀 \u202e', '%_*?[]', 'x'.repeat(100_000)];
    for (const [i, text] of nasty.entries()) {
      const q = { kind: 'scheduled' as const, name: text, sql: `select '${text}'` };
      await s.recordIncident('acme', q, text, policy, T0 + i);
      const out = await s.recordIncident('acme', q, text, policy, T0 + i);
      expect(out.quarantined).toBeDefined();
      expect(s.find('acme', 'scheduled', text, `select '${text}'`, T0 + i)).toBeDefined();
    }
    const rows = s.list(['acme'], T0 + 100);
    expect(rows).toHaveLength(nasty.length);
    // Stored texts are bounded (display), the hash covers the whole SQL.
    expect(Math.max(...rows.map((r) => r.sql.length))).toBeLessThanOrEqual(4097);
    expect(rows.find((r) => r.name.startsWith('x'.repeat(10)))?.sqlHash).toBe(sqlHash(`select '${'x'.repeat(100_000)}'`));
    expect((await s.release('acme', "x'); DROP TABLE quarantine_entries; --", T0 + 100)).length).toBe(1);
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name LIKE 'quarantine_%'").get()).toEqual({ n: 3 });
    // list() with ids containing SQL does not widen the scope.
    expect(s.list(["acme' OR '1'='1"], T0 + 100)).toEqual([]);
  });
});
