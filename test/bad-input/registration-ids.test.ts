// Issue 9 (bad input): registration ids end up in file paths, so every entry point that takes
// one refuses a bad id with a clear error (code E_INVALID_REGISTRATION_ID, or a ConfigError naming
// the field) before touching the disk: the config file, the registrations store, the runtime's
// path helpers, the Runner, the kolide_grpc extension's options and the control API's validation.
// Each check runs inside a temp root with a sentinel next to it; afterwards nothing was created,
// changed or deleted outside the root and no registration directory appeared inside it.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LauncherError } from '../../src/errors.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { openDatabase, type SqliteDatabase } from '../../src/store/database.js';
import { RegistrationStore, validateRegistrationId } from '../../src/store/registrations.js';
import { RunHistoryStore } from '../../src/store/run-history.js';
import { instancePaths, registrationDir } from '../../src/runtime/instance/paths.js';
import { Runner } from '../../src/runtime/runner.js';
import { createKolideExtension, type KolideExtensionOptions } from '../../extensions/kolide_grpc/index.js';
import { resolveOptions } from '../../extensions/kolide_grpc/options.js';
import * as validate from '../../src/control/validate.js';
import type { DeviceClient } from '../../src/device/index.js';
import { shortTempDir } from '../helpers/tmp.js';
import { parseRegistrationId as rid, type RegistrationId } from '../../src/registration.js';

/** A bad id forced past the type: the runtime checks must still refuse it (JavaScript callers, casts). */
const unchecked = (id: string) => id as RegistrationId;

/** Ids that must never be accepted: traversal, separators, NUL, length, case, non-ASCII, lone surrogates. */
const BAD_IDS: Array<[string, string]> = [
  ['parent traversal', '../x'],
  ['deep traversal', '../../escape'],
  ['deeper traversal', '../../../escape'],
  ['slash', 'a/b'],
  ['backslash', 'a\\b'],
  ['dot', '.'],
  ['dot-dot', '..'],
  ['dot inside', 'a.b'],
  ['absolute', '/etc/passwd'],
  ['absolute tmp', '/tmp/x'],
  ['NUL', 'a\0b'],
  ['only NUL', '\0'],
  ['64 characters', 'a'.repeat(64)],
  ['4096 characters', 'a'.repeat(4096)],
  ['uppercase', 'Acme'],
  ['all uppercase', 'ACME'],
  ['unicode letter', 'acmé'],
  ['unicode lookalike dot', 'a\u2024b'],
  ['fullwidth solidus', 'a\uff0fb'],
  ['lone high surrogate', 'a\ud800'],
  ['lone low surrogate', '\udc00a'],
  ['empty', ''],
  ['space', 'a b'],
  ['leading dash', '-a'],
  ['leading underscore', '_a'],
  ['newline', 'a\n'],
  ['tilde', '~'],
  ['shell', '$(id)'],
  ['percent-encoded traversal', '%2e%2e'],
];
const GOOD_IDS = ['a', '0', 'acme', 'tenant-1', 't_2', 'a'.repeat(63)];

let parent: ReturnType<typeof shortTempDir>;
let root: string;
let sentinel: string;

/** Every path under `dir`, relative, sorted. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      out.push(relative(dir, p));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

let before: string[];

beforeAll(() => {
  parent = shortTempDir('ri');
  root = join(parent.dir, 'root');
  mkdirSync(root);
  sentinel = join(parent.dir, 'x');
  mkdirSync(sentinel);
  writeFileSync(join(sentinel, 'keep'), 'sentinel');
  writeFileSync(join(parent.dir, 'escape'), 'sentinel');
  before = tree(parent.dir);
});

afterAll(() => parent?.cleanup());

/** Nothing outside the root changed, and no registration directory exists inside it. */
function expectDiskUnharmed(allowedInRoot: RegExp = /^$/): void {
  const now = tree(parent.dir).filter((p) => !(p.startsWith('root/') && allowedInRoot.test(p.slice('root/'.length))));
  expect(now).toEqual(before);
  expect(existsSync(join(root, 'registrations'))).toBe(false);
}

function expectInvalidId(fn: () => unknown, what: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `${what} accepted the id`).toBeInstanceOf(LauncherError);
  expect((thrown as LauncherError).code, `${what}: ${(thrown as Error).message}`).toBe('E_INVALID_REGISTRATION_ID');
  expect((thrown as Error).message).toMatch(/registration id|not a valid registration id/);
}

async function expectInvalidIdAsync(fn: () => Promise<unknown>, what: string): Promise<void> {
  const err = await fn().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${what} accepted the id`).toBeInstanceOf(LauncherError);
  expect((err as LauncherError).code, `${what}: ${(err as Error).message}`).toBe('E_INVALID_REGISTRATION_ID');
}

describe('bad registration ids', () => {
  it.each(BAD_IDS)('config file: %s is refused with a ConfigError naming registrations.0.id', (_label, id) => {
    const text = `device_server:\n  url: https://d.example\nregistrations:\n  - id: ${JSON.stringify(id)}\n    enroll_secret: s\n`;
    let thrown: unknown;
    try {
      parseConfig(text, 'bad.yaml', {}, root);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).problems.some((p) => p.startsWith('registrations.0.id'))).toBe(true);
    expectDiskUnharmed();
  });

  it.each(BAD_IDS)('store and path helpers: %s is refused before touching the disk', (_label, id) => {
    const db = openDatabase(join(root, 'launcher.sqlite'));
    try {
      const store = new RegistrationStore(db);
      const runs = new RunHistoryStore(db);
      const listed = store.list();
      expectInvalidId(() => validateRegistrationId(id), 'validateRegistrationId');
      expectInvalidId(() => store.add({ id, enrollSecret: 's' }), 'RegistrationStore.add');
      expectInvalidId(() => store.get(id), 'RegistrationStore.get');
      expectInvalidId(() => store.remove(id), 'RegistrationStore.remove');
      expectInvalidId(() => runs.list(id, 10), 'RunHistoryStore.list');
      expectInvalidId(() => registrationDir(root, unchecked(id)), 'registrationDir');
      expectInvalidId(() => instancePaths(root, unchecked(id), '01J0000000000000000000ABCD', join(root, 's')), 'instancePaths');
      expect(store.list()).toEqual(listed);
    } finally {
      db.close();
    }
    expectDiskUnharmed(/^launcher\.sqlite(-wal|-shm)?$/);
  });

  it.each(BAD_IDS)('Runner: %s is refused by add, remove, restart, query and history', async (_label, id) => {
    const runner = new Runner({
      root,
      osquerydPath: '/nonexistent/osqueryd',
      extensionFactory: () => {
        throw new Error('never called');
      },
    });
    try {
      await expectInvalidIdAsync(() => runner.add({ id, enrollSecret: 's' }), 'Runner.add');
      await expectInvalidIdAsync(() => runner.remove(unchecked(id)), 'Runner.remove');
      await expectInvalidIdAsync(() => runner.restart(unchecked(id)), 'Runner.restart');
      await expectInvalidIdAsync(() => runner.query(unchecked(id), 'select 1'), 'Runner.query');
      expectInvalidId(() => runner.history(unchecked(id)), 'Runner.history');
    } finally {
      await runner.interrupt();
    }
    expectDiskUnharmed(/^launcher\.sqlite(-wal|-shm)?$/);
  });

  it.each(BAD_IDS)('kolide_grpc extension options: %s is refused', (_label, id) => {
    const opts = { registrationId: id, enrollSecret: 's', client: {} as DeviceClient, db: {} as SqliteDatabase } as KolideExtensionOptions;
    expectInvalidId(() => resolveOptions(opts), 'resolveOptions');
    expectInvalidId(() => createKolideExtension(opts), 'createKolideExtension');
    expectDiskUnharmed(/^launcher\.sqlite(-wal|-shm)?$/);
  });

  it.each(BAD_IDS)('control API validation: %s is refused', (_label, id) => {
    expectInvalidId(() => validate.registrationId(id), 'validate.registrationId');
    expectInvalidId(() => validate.addRegistration({ id, enrollSecret: 's' }), 'validate.addRegistration');
  });

  it('the same entry points accept the boundary-valid ids', () => {
    const db = openDatabase(join(root, 'ok.sqlite'));
    try {
      const store = new RegistrationStore(db);
      for (const id of GOOD_IDS) {
        expect(validateRegistrationId(id)).toBe(id);
        expect(store.add({ id }).id).toBe(id);
        expect(registrationDir(root, rid(id))).toBe(join(root, 'registrations', id));
        expect(resolveOptions({ registrationId: rid(id), client: {} as DeviceClient, db }).registrationId).toBe(id);
        expect(validate.registrationId(id)).toBe(id);
        const cfg = parseConfig(`device_server: {url: "https://d.example"}\nregistrations: [{id: "${id}"}]\n`, 'ok.yaml', {}, root);
        expect(cfg.registrations[0]!.id).toBe(id);
      }
    } finally {
      db.close();
    }
  });
});
