// issue 13: writes other than logs (registrations, run history, node keys,
// config cache) wait for another process's lock asynchronously, in order,
// with a bound, instead of blocking the event loop for busy_timeout.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type SqliteDatabase } from '../../src/store/database.js';
import { ConfigCache } from '../../src/store/config-cache.js';
import { NodeKeyStore } from '../../src/store/node-keys.js';
import { RegistrationStore } from '../../src/store/registrations.js';
import { RunHistoryStore } from '../../src/store/run-history.js';
import { LogBuffer } from '../../src/store/log-buffer.js';
import { writesOf } from '../../src/store/write-queue.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => void };
let path: string;
let db: SqliteDatabase;
let other: SqliteDatabase;

beforeEach(() => {
  tmp = shortTempDir('wq');
  path = join(tmp.dir, 'l.db');
  db = openDatabase(path);
  other = openDatabase(path);
});

afterEach(() => {
  if (other.open) other.close();
  if (db.open) db.close();
  tmp.cleanup();
});

describe('write queue', () => {
  it('queues writes met by a lock, in order, serves node keys and configs from memory meanwhile, and lands them after release', async () => {
    const regs = new RegistrationStore(db);
    const history = new RunHistoryStore(db);
    const keys = new NodeKeyStore(db);
    const configs = new ConfigCache(db);
    other.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    const reg = regs.add({ id: 'acme', enrollSecret: 's' });
    expect(reg.id).toBe('acme');
    const started = history.start({ registrationId: 'acme', runId: 'R1', osquerydPath: '/x' });
    void history.setPid('R1', 42);
    void keys.setNodeKey('acme', 'nk-1');
    void configs.set('acme', '{"schedule":{}}');
    expect(writesOf(db).pending).toBeGreaterThanOrEqual(5);
    // Not on disk yet, but what the supervisor was told is served from memory.
    expect(new NodeKeyStore(db).getNodeKey('acme')).toBe('nk-1');
    expect(new ConfigCache(db).get('acme')?.config).toBe('{"schedule":{}}');
    expect(other.prepare('SELECT count(*) FROM registrations').pluck().get()).toBe(0);
    await waitFor(() => ticks > 20, 10_000, 'the event loop to keep turning while the writes wait');
    other.exec('COMMIT');
    await regs.written();
    await started;
    await waitFor(() => writesOf(db).pending === 0, 10_000, 'the queue to drain');
    clearInterval(ticker);
    expect(other.prepare('SELECT id FROM registrations').pluck().all()).toEqual(['acme']);
    expect(other.prepare('SELECT pid FROM run_history WHERE run_id = ?').pluck().get('R1')).toBe(42);
    expect(other.prepare('SELECT node_key FROM node_keys_registrations WHERE registration_id = ?').pluck().get('acme')).toBe('nk-1');
    expect(other.prepare('SELECT config FROM config_cache_entries WHERE registration_id = ?').pluck().get('acme')).toBe('{"schedule":{}}');
  });

  it('gives a write up after its budget with an error naming it and the lock', async () => {
    const regs = new RegistrationStore(db);
    writesOf(db).budgetMs = 50;
    const given: string[] = [];
    writesOf(db).onError = (what) => given.push(what);
    other.exec('BEGIN IMMEDIATE');
    regs.add({ id: 'acme' });
    await expect(regs.written()).rejects.toThrow(
      /saving registration acme: the database is locked by another process .*gave up after \d+ attempt\(s\) over \d+ ms/,
    );
    expect(given).toEqual(['saving registration acme']);
    other.exec('COMMIT');
  });
  it("the supervisor's own status lines wait out a lock in order instead of being lost (review of issue 14)", async () => {
    const buffer = new LogBuffer(db);
    buffer.append('acme', 'status', ['{"m":"zero"}']); // the stream's table exists before the lock
    other.exec('BEGIN IMMEDIATE');
    expect(() => buffer.append('acme', 'status', ['{"m":"lost"}'])).toThrow(/locked/);
    const first = buffer.appendQueued('acme', 'status', ['{"m":"one"}']);
    const second = buffer.appendQueued('acme', 'status', ['{"m":"two"}']);
    expect(writesOf(db).pending).toBe(2);
    other.exec('COMMIT');
    await first;
    await second;
    expect(buffer.readBatch('acme', 'status', { limitBytes: 1 << 20 }).logs.map((l) => l.data)).toEqual([
      '{"m":"zero"}',
      '{"m":"one"}',
      '{"m":"two"}',
    ]);
  });
});
