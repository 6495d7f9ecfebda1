import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type SqliteDatabase } from '../../src/store/database.js';
import { NodeKeyStore } from '../../src/store/node-keys.js';
import { ConfigCache } from '../../src/store/config-cache.js';
import { shortTempDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => void };
let path: string;
let db: SqliteDatabase;

beforeEach(() => {
  tmp = shortTempDir('nk');
  path = join(tmp.dir, 'l.db');
  db = openDatabase(path);
});

afterEach(() => {
  if (db.open) db.close();
  tmp.cleanup();
});

describe('NodeKeyStore', () => {
  it('generates a host identifier once per registration and keeps it across reopen', () => {
    const s = new NodeKeyStore(db);
    const a = s.hostIdentifier('default');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(s.hostIdentifier('default')).toBe(a);
    const b = s.hostIdentifier('tenant-b');
    expect(b).not.toBe(a);
    db.close();
    db = openDatabase(path);
    const again = new NodeKeyStore(db);
    expect(again.hostIdentifier('default')).toBe(a);
    expect(again.hostIdentifier('tenant-b')).toBe(b);
  });

  it('replaces a stored host identifier that is not a UUID', () => {
    const s = new NodeKeyStore(db);
    s.hostIdentifier('x');
    db.prepare("UPDATE node_keys_registrations SET host_identifier = 'garbage' WHERE registration_id = 'x'").run();
    const fresh = s.hostIdentifier('x');
    expect(fresh).not.toBe('garbage');
    expect(s.hostIdentifier('x')).toBe(fresh);
  });

  it('stores, clears and isolates node keys per registration; the host identifier survives', () => {
    const s = new NodeKeyStore(db);
    expect(s.getNodeKey('a')).toBeUndefined();
    const hid = s.hostIdentifier('a');
    s.setNodeKey('a', 'key-a', 'acme');
    s.setNodeKey('b', 'key-b');
    expect(s.getNodeKey('a')).toBe('key-a');
    expect(s.getNodeKey('b')).toBe('key-b');
    expect(s.get('a')).toMatchObject({ hostIdentifier: hid, munemo: 'acme' });
    s.clearNodeKey('a');
    expect(s.getNodeKey('a')).toBeUndefined();
    expect(s.getNodeKey('b')).toBe('key-b');
    expect(s.hostIdentifier('a')).toBe(hid);
    expect(() => s.setNodeKey('a', '')).toThrow(/empty node key/);
    expect(() => s.hostIdentifier('')).toThrow(/registration id/);
    s.remove('a');
    expect(s.get('a')).toBeUndefined();
    expect(s.list().map((r) => r.registrationId)).toEqual(['b']);
  });
});

describe('ConfigCache', () => {
  it('keeps the last config per registration across reopen', () => {
    const c = new ConfigCache(db);
    expect(c.get('a')).toBeUndefined();
    c.set('a', '{"v":1}');
    c.set('a', '{"v":2}');
    c.set('b', '{"b":true}');
    db.close();
    db = openDatabase(path);
    const again = new ConfigCache(db);
    expect(again.get('a')?.config).toBe('{"v":2}');
    expect(again.get('b')?.config).toBe('{"b":true}');
    again.clear('a');
    expect(again.get('a')).toBeUndefined();
  });
});
