// Issue 9 (bad input): the enroll secret file (docs/protocol/device.md#enroll-secret). Missing, empty, whitespace-only,
// a directory, unreadable (a path under a regular file), huge (> 16 KiB), a FIFO with no writer and
// a device that never ends are each refused with a clear E_CONFIG error naming the registration and
// the file — no crash, no hang, no unbounded read — and through the extension no enrollment request
// is sent.
import { execFileSync } from 'node:child_process';
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LauncherError } from '../../src/errors.js';
import { DeviceClient } from '../../src/device/index.js';
import { openDatabase, type SqliteDatabase } from '../../src/store/database.js';
import { createKolideExtension, readEnrollSecret } from '../../extensions/kolide_grpc/index.js';
import { shortTempDir } from '../helpers/tmp.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

let tmp: ReturnType<typeof shortTempDir>;
const files: Record<string, string> = {};

beforeAll(() => {
  tmp = shortTempDir('es');
  const f = (name: string, content: string | Buffer) => {
    const p = join(tmp.dir, name);
    writeFileSync(p, content);
    return p;
  };
  files.good = f('good', '  eyJhbGciOiJIUzI1NiJ9.eyJvcmdhbml6YXRpb24iOiJhY21lIn0.sig\n');
  files.empty = f('empty', '');
  files.whitespace = f('ws', ' \n\t\r\n  ');
  files.huge = f('huge', 'a'.repeat(16 * 1024 + 1));
  files.limit = f('limit', 'a'.repeat(16 * 1024));
  files.sparse = f('sparse', '');
  truncateSync(files.sparse, 1024 * 1024 * 1024); // 1 GiB, nothing on disk
  files.dir = join(tmp.dir, 'dir');
  mkdirSync(files.dir);
  files.underFile = join(files.good, 'secret'); // ENOTDIR
  files.missing = join(tmp.dir, 'missing');
  files.fifo = join(tmp.dir, 'fifo');
  execFileSync('mkfifo', [files.fifo]);
  files.device = '/dev/zero';
});

afterAll(() => tmp?.cleanup());

async function refusal(path: string): Promise<LauncherError> {
  const err = await readEnrollSecret('acme', undefined, path).then(
    (v) => new Error(`accepted a secret of ${v.length} characters`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LauncherError);
  expect((err as LauncherError).code, (err as Error).message).toBe('E_CONFIG');
  expect((err as Error).message).toContain('registration acme');
  expect((err as Error).message).toContain(path);
  return err as LauncherError;
}

describe('enroll secret from a file', () => {
  it('reads a good file, trimmed, and accepts exactly 16 KiB', async () => {
    expect(await readEnrollSecret('acme', undefined, files.good)).toBe('eyJhbGciOiJIUzI1NiJ9.eyJvcmdhbml6YXRpb24iOiJhY21lIn0.sig');
    expect((await readEnrollSecret('acme', undefined, files.limit)).length).toBe(16 * 1024);
  });

  it('refuses a missing file', async () => {
    expect((await refusal(files.missing!)).message).toMatch(/cannot read enroll secret file .*ENOENT/);
  });

  it('refuses an empty and a whitespace-only file', async () => {
    expect((await refusal(files.empty!)).message).toMatch(/is empty/);
    expect((await refusal(files.whitespace!)).message).toMatch(/is empty/);
  });

  it('refuses a directory and a path under a regular file', async () => {
    expect((await refusal(files.dir!)).message).toMatch(/not a regular file|EISDIR/);
    expect((await refusal(files.underFile!)).message).toMatch(/ENOTDIR/);
  });

  it('refuses a file over 16 KiB, without reading a huge one', async () => {
    expect((await refusal(files.huge!)).message).toMatch(/16385 bytes.*16384/);
    expect((await refusal(files.sparse!)).message).toMatch(/1073741824 bytes/);
  });

  it('refuses a FIFO with no writer and an endless device instead of hanging', async () => {
    expect((await refusal(files.fifo!)).message).toMatch(/not a regular file/);
    expect((await refusal(files.device!)).message).toMatch(/not a regular file/);
  });

  it('refuses an empty or whitespace-only value, and neither value nor file', async () => {
    await expect(readEnrollSecret('acme', '', undefined)).rejects.toMatchObject({
      code: 'E_CONFIG',
      message: expect.stringMatching(/value is empty/),
    });
    await expect(readEnrollSecret('acme', ' \n', undefined)).rejects.toMatchObject({ code: 'E_CONFIG' });
    await expect(readEnrollSecret('acme', undefined, undefined)).rejects.toMatchObject({
      code: 'E_CONFIG',
      message: expect.stringMatching(/no enroll secret/),
    });
  });
});

describe('enroll secret through the kolide_grpc extension', () => {
  let server: http.Server;
  let requests = 0;
  let client: DeviceClient;
  let db: SqliteDatabase;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      requests++;
      req.resume();
      res.writeHead(500).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = new DeviceClient({
      serverUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      insecureTransport: true,
      maxAttempts: 1,
    });
    db = openDatabase(join(tmp.dir, 'l.sqlite'));
  });

  afterAll(async () => {
    client?.close();
    db?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it.each(['missing', 'empty', 'whitespace', 'dir', 'underFile', 'huge', 'fifo', 'device'])(
    'enroll() with a %s secret file fails with E_CONFIG and sends nothing',
    async (kind) => {
      const ext = createKolideExtension({ registrationId: rid('acme'), enrollSecretPath: files[kind], client, db });
      try {
        await expect(ext.enroll()).rejects.toMatchObject({ code: 'E_CONFIG' });
        expect(requests).toBe(0);
      } finally {
        await ext.stop();
      }
    },
  );
});
