import { chmodSync, mkdirSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ensurePrivateDir,
  instancePaths,
  registrationDir,
  resolveSocketDir,
  runShortId,
  socketDirCandidates,
} from '../../../src/runtime/instance/paths.js';
import { MAX_MANAGER_SOCKET_PATH } from '../../../src/osquery/socket-path.js';
import { tempRoot } from '../helpers.js';
import { parseRegistrationId as rid, type RegistrationId } from '../../../src/registration.js';

const RUN = '01JDXZ3M4K7Q8R9S0T1V2W3X4Y';
const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});
function tmp(): string {
  const t = tempRoot('pa');
  cleanups.push(t.cleanup);
  return t.dir;
}

describe('paths', () => {
  it('lays out one run: per-registration database, per-run socket, pidfile and record named by the run id', () => {
    const p = instancePaths('/var/lib/l', rid('tenant-a'), RUN, '/var/lib/l/s');
    expect(p).toEqual({
      registrationDir: '/var/lib/l/registrations/tenant-a',
      databasePath: '/var/lib/l/registrations/tenant-a/osquery.db',
      socketDir: '/var/lib/l/s',
      socketPath: `/var/lib/l/s/${runShortId(RUN)}.em`,
      pidfilePath: `/var/lib/l/s/${runShortId(RUN)}.pid`,
      runRecordPath: `/var/lib/l/s/${runShortId(RUN)}.run`,
    });
    expect(runShortId(RUN)).toHaveLength(12);
    expect(runShortId(RUN)).toBe(RUN.slice(-12).toLowerCase());
  });

  it.each([['../etc'], ['a/b'], ['A'], ['-x'], [''], ['a'.repeat(64)], ['a.b']])(
    'refuses registration id %j before building a path',
    (id) => {
      expect(() => registrationDir('/r', id as RegistrationId)).toThrow(expect.objectContaining({ code: 'E_INVALID_REGISTRATION_ID' }));
    },
  );

  it('uses <root>/s when the socket fits, created 0700', () => {
    const root = tmp();
    const dir = resolveSocketDir(root);
    expect(dir).toBe(join(root, 's'));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(Buffer.byteLength(instancePaths(root, rid('a'), RUN, dir).socketPath)).toBeLessThanOrEqual(MAX_MANAGER_SOCKET_PATH);
  });

  it('falls back to a private directory under tmpdir for a long root, the same one every time', () => {
    const tmpBase = tmp();
    const root = `/very/${'long/'.repeat(20)}root`;
    const dir = resolveSocketDir(root, tmpBase);
    expect(dir.startsWith(tmpBase)).toBe(true);
    expect(resolveSocketDir(root, tmpBase)).toBe(dir);
    expect(socketDirCandidates(root, tmpBase)[1]).toBe(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('refuses with E_SOCKET_PATH_TOO_LONG when the tmpdir is too long as well', () => {
    const longTmp = `/tmp/${'x'.repeat(100)}`;
    expect(() => resolveSocketDir(`/${'r'.repeat(100)}`, longTmp)).toThrow(expect.objectContaining({ code: 'E_SOCKET_PATH_TOO_LONG' }));
  });

  it('refuses a socket directory others can write to, or a symlink', () => {
    const base = tmp();
    const open = join(base, 'open');
    mkdirSync(open, { mode: 0o700 });
    chmodSync(open, 0o777);
    expect(() => ensurePrivateDir(open)).toThrow(expect.objectContaining({ code: 'E_PERMISSION_DENIED' }));
    const link = join(base, 'link');
    const target = join(base, 'target');
    mkdirSync(target, { mode: 0o700 });
    symlinkSync(target, link);
    expect(() => ensurePrivateDir(link)).toThrow(/not a directory/);
  });
});
