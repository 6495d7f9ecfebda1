// Issue 22: isolation settings are checked where they come in (config, store), kept across a reopen,
// and turned into osqueryd's flags with the vendor/tenant defaults.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { isolationFlags, isolationScript, resolveIsolation } from '../../../src/runtime/instance/isolation.js';
import { openDatabase } from '../../../src/store/database.js';
import { RegistrationStore } from '../../../src/store/registrations.js';
import { tempRoot } from '../helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

describe('isolation settings', () => {
  it('defaults: tenants filesystem with the denylist and no carver, the vendor none; explicit settings win', () => {
    expect(resolveIsolation(undefined, false)).toEqual({
      mode: 'filesystem',
      disableTables: ['curl', 'curl_certificate', 'carves'],
      disableCarver: true,
    });
    expect(resolveIsolation(undefined, true)).toEqual({ mode: 'none', disableTables: [], disableCarver: false });
    expect(resolveIsolation({ mode: 'none', disableTables: [] }, false)).toEqual({ mode: 'none', disableTables: [], disableCarver: true });
    expect(isolationFlags(resolveIsolation(undefined, false))).toEqual([
      '--disable_tables=curl,curl_certificate,carves',
      '--disable_carver=true',
    ]);
    expect(isolationFlags(resolveIsolation(undefined, true))).toEqual([]);
  });

  it('the config accepts isolation per registration and rejects a bad mode or table name, naming the field', () => {
    const base = { device_server: { url: 'https://d.example' } };
    const ok = configSchema.parse({
      ...base,
      isolation_namespaces: 'off',
      registrations: [{ id: 'acme', isolation: { mode: 'none', disable_tables: ['curl'] } }],
    });
    expect(ok.registrations[0]!.isolation).toEqual({ mode: 'none', disable_tables: ['curl'] });
    expect(ok.isolation_namespaces).toBe('off');
    const bad = configSchema.safeParse({ ...base, registrations: [{ id: 'acme', isolation: { mode: 'chroot' } }] });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain('isolation');
    const badTable = configSchema.safeParse({
      ...base,
      registrations: [{ id: 'acme', isolation: { disable_tables: ['curl; rm -rf /'] } }],
    });
    expect(JSON.stringify(badTable.error?.issues)).toMatch(/is not a table name/);
  });

  it('the store keeps the settings across a reopen and refuses bad ones with a clear error', async () => {
    const t = tempRoot('iss');
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'l.sqlite');
    let db = openDatabase(path);
    const store = new RegistrationStore(db);
    store.add({ id: 'acme', isolation: { disableTables: ['yara'] } });
    expect(() => store.add({ id: 'beta', isolation: { mode: 'chroot' as never } })).toThrow(
      /registration beta: isolation.mode: must be one of filesystem, none, got "chroot"/,
    );
    expect(() => store.add({ id: 'beta', isolation: { disableTables: ['Bad-Name'] } })).toThrow(
      /registration beta: isolation.disable_tables: "Bad-Name" is not a table name/,
    );
    await store.written();
    db.close();
    db = openDatabase(path);
    cleanups.push(() => db.close());
    expect(new RegistrationStore(db).get('acme')?.isolation).toEqual({ disableTables: ['yara'] });
  });

  it('binds back only paths under the root, quoting them for the shell', () => {
    const root = tempRoot('isq');
    cleanups.push(root.cleanup);
    const script = isolationScript({ root: root.dir, keep: [root.dir, '/etc', join(root.dir, 'missing')], cover: [], gid: 1879048192 });
    expect(script).toContain(`mount -t tmpfs -o mode=0755,size=1m,nosuid,nodev olr-hidden '${root.dir}'`);
    expect(script).not.toContain('--bind');
    expect(isolationScript({ root: "/tmp/it's", keep: [], cover: [], gid: 1879048192 })).toContain(`cd '/tmp/it'\\''s'`);
  });
});
