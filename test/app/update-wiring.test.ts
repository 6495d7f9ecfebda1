// An update event becomes a status line in the vendor's buffer (and the affected tenant's); while another
// process holds the database's write lock the line waits in the store's write queue and lands, in order,
// once the lock goes (review of issue 14: it used to be lost). Two real connections on one SQLite file.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bufferUpdateEvent } from '../../src/app/update-wiring.js';
import { openDatabase, type SqliteDatabase } from '../../src/store/database.js';
import { LogBuffer } from '../../src/store/log-buffer.js';
import { writesOf } from '../../src/store/write-queue.js';
import { shortTempDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => void };
let db: SqliteDatabase;
let other: SqliteDatabase;

beforeEach(() => {
  tmp = shortTempDir('uw');
  db = openDatabase(join(tmp.dir, 'l.db'));
  other = openDatabase(join(tmp.dir, 'l.db'));
});

afterEach(() => {
  if (other.open) other.close();
  if (db.open) db.close();
  tmp.cleanup();
});

const event = (detail: string, registrationId: string | null = null) => ({
  at: '2026-12-03T06:00:00.000Z',
  version: '5.12.1',
  registrationId,
  event: 'staged',
  detail,
});

describe('bufferUpdateEvent', () => {
  it('waits out another process holding the lock, then buffers every line in order', async () => {
    const buffer = new LogBuffer(db);
    const known = () => ['kolide', 'acme'];
    bufferUpdateEvent(buffer, 'kolide', known, event('first'), 'info'); // streams exist before the lock
    other.exec('BEGIN IMMEDIATE');
    bufferUpdateEvent(buffer, 'kolide', known, event('second', 'acme'), 'warn');
    bufferUpdateEvent(buffer, 'kolide', known, event('third'), 'error');
    expect(writesOf(db).pending).toBe(3); // vendor and acme for the second, vendor for the third
    other.exec('COMMIT');
    await writesOf(db).run('a marker after the queued lines', () => undefined);
    const messages = (id: string) =>
      buffer.readBatch(id, 'status', { limitBytes: 1 << 20 }).logs.map((l) => {
        const o = JSON.parse(l.data) as { s: number; m: string };
        return [o.s, o.m];
      });
    expect(messages('kolide')).toEqual([
      [0, 'osquery-launcher update: first'],
      [1, 'osquery-launcher update: second'],
      [2, 'osquery-launcher update: third'],
    ]);
    expect(messages('acme')).toEqual([[1, 'osquery-launcher update: second']]);
  });
});
