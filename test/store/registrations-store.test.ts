// Store tests live here because the runtime owns these two store modules
// (src/store/registrations.ts, src/store/run-history.ts).
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
import { RegistrationStore, validateRegistrationId } from '../../src/store/registrations.js';
import { tempRoot } from '../runtime/helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

describe('validateRegistrationId', () => {
  it.each([['a'], ['vendor'], ['tenant-1'], ['t_2'], ['0abc'], ['a'.repeat(63)]])('accepts %j', (id) => {
    expect(validateRegistrationId(id)).toBe(id);
  });

  it.each([[''], ['A'], ['-a'], ['_a'], ['a/b'], ['..'], ['a.b'], ['a b'], ['é'], ['a'.repeat(64)], [42], [undefined], ['a\n']])(
    'refuses %j with E_INVALID_REGISTRATION_ID',
    (id) => {
      expect(() => validateRegistrationId(id)).toThrow(expect.objectContaining({ code: 'E_INVALID_REGISTRATION_ID' }));
    },
  );
});

describe('RegistrationStore', () => {
  function open() {
    const t = tempRoot('rs');
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'l.sqlite');
    const db = openDatabase(path);
    cleanups.push(() => db.open && db.close());
    return { db, path, store: new RegistrationStore(db) };
  }

  it('adds, lists, gets and removes; survives reopening the database', () => {
    const { db, path, store } = open();
    const a = store.add({ id: 'vendor', enrollSecret: 's3cret', limits: { memoryMb: 300, cpuPercent: 20 }, osqueryFlags: ['verbose'] });
    store.add({ id: 'tenant-b', enrollSecretPath: '/etc/secret' });
    expect(a.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    db.close();
    const db2 = openDatabase(path);
    cleanups.push(() => db2.close());
    const again = new RegistrationStore(db2);
    expect(again.list().map((r) => r.id)).toEqual(['vendor', 'tenant-b']);
    expect(again.get('vendor')).toEqual(a);
    expect(again.get('tenant-b')).toMatchObject({ enrollSecretPath: '/etc/secret', limits: {}, osqueryFlags: [] });
    expect(again.remove('vendor')).toBe(true);
    expect(again.remove('vendor')).toBe(false);
    expect(again.get('vendor')).toBeUndefined();
  });

  it('refuses a duplicate id with E_ALREADY_EXISTS', () => {
    const { store } = open();
    store.add({ id: 'a' });
    expect(() => store.add({ id: 'a' })).toThrow(expect.objectContaining({ code: 'E_ALREADY_EXISTS' }));
  });

  it('refuses invalid ids on every method, before touching the database', () => {
    const { store } = open();
    for (const call of [() => store.add({ id: '../x' }), () => store.get('../x'), () => store.remove('../x')]) {
      expect(call).toThrow(expect.objectContaining({ code: 'E_INVALID_REGISTRATION_ID' }));
    }
  });

  it.each([[{ memoryMb: 10 }], [{ memoryMb: 1.5 }], [{ cpuPercent: 0 }], [{ cpuPercent: 101 }]])('refuses limits %j', (limits) => {
    const { store } = open();
    expect(() => store.add({ id: 'a', limits })).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
  });
});
