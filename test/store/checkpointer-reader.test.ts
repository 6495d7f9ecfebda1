// Another process holding a read transaction (an operator's `sqlite3` shell, a backup tool) never blocks a WAL
// writer by itself. The checkpoint worker's RESTART / TRUNCATE checkpoints take the write lock and then wait for
// readers with the busy handler: the worker must not hold the supervisor's write lock while it waits for such a
// reader, or log appends meet SQLITE_BUSY past their budget and are refused (osqueryd drops refused logs).
// Real file, real worker thread, a real second process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startCheckpointer, type Checkpointer } from '../../src/store/checkpointer.js';
import { openDatabase, type SqliteDatabase } from '../../src/store/database.js';
import { LogAppendQueue } from '../../src/store/log-append-queue.js';
import { LogBuffer } from '../../src/store/log-buffer.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => void };
let path: string;
let db: SqliteDatabase;
let ck: Checkpointer | undefined;
let reader: ChildProcess | undefined;

beforeEach(() => {
  tmp = shortTempDir('ckr');
  path = join(tmp.dir, 'launcher.sqlite');
  db = openDatabase(path);
});

afterEach(async () => {
  reader?.kill('SIGKILL');
  reader = undefined;
  await ck?.stop();
  ck = undefined;
  db.close();
  tmp.cleanup();
});

const driver = createRequire(import.meta.url).resolve('better-sqlite3');

/** A process that opens a read transaction on the database and holds it until its stdin closes. */
async function holdReadTransaction(): Promise<ChildProcess> {
  const src = `
    const Database = require(${JSON.stringify(driver)});
    const db = new Database(${JSON.stringify(path)}, { fileMustExist: true });
    db.exec('BEGIN');
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    process.stdout.write('reading\\n');
    process.stdin.on('data', () => {});
    process.stdin.on('end', () => { db.exec('COMMIT'); db.close(); });
  `;
  const child = spawn(process.execPath, ['-e', src], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`reader exited (${code})`)));
    child.stdout!.once('data', () => resolve());
  });
  return child;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('checkpoint worker and a reader in another process', () => {
  it('refuses no log append while another process holds a read transaction', async () => {
    ck = startCheckpointer(db, path, { thresholdBytes: 64 * 1024, maxWalBytes: 256 * 1024, intervalMs: 10, idleExitMs: 200 });
    const buffer = new LogBuffer(db);
    const queue = new LogAppendQueue(buffer);
    const line = 'x'.repeat(1000);
    const append = () => queue.append([{ registrationId: 'r1', kind: 'result', data: line }]);
    // Frames that are not checkpointed yet when the reader starts: its snapshot pins a read mark in the WAL.
    for (let i = 0; i < 50; i++) await append();
    reader = await holdReadTransaction();
    let ok = 0;
    const refused: string[] = [];
    // Writes on past maxWalBytes (RESTART), then a pause past idleExitMs (the idle exit's TRUNCATE), then writes again.
    for (const [count, then] of [
      [600, 400],
      [100, 0],
    ] as const) {
      for (let i = 0; i < count; i++) {
        try {
          await append();
          ok++;
        } catch (err) {
          refused.push((err as Error).message);
        }
      }
      await pause(then);
    }
    await waitFor(() => ck!.active, 5_000, 'the checkpoint worker');
    expect(refused.slice(0, 3), `${refused.length} append(s) refused`).toEqual([]);
    expect(buffer.stats('r1', 'result').count).toBe(50 + ok);
  }, 60_000);
});
