import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { reapOrphans } from '../../src/runtime/reaper.js';
import { SupervisorLock } from '../../src/runtime/supervisor-lock.js';
import { isAlive, reapAll, REPO, tempRoot, waitFor } from './helpers.js';

const FIX = join(REPO, 'test/runtime/fixtures');
const started: number[] = [];
const children: ResultPromise[] = [];
const cleanups: Array<() => void> = [];

afterEach(async () => {
  const leaked = await reapAll(started.splice(0));
  for (const c of children.splice(0)) await c.catch(() => undefined);
  while (cleanups.length) cleanups.pop()!();
  expect(leaked, 'processes left alive').toEqual([]);
});

function root(): string {
  const t = tempRoot('rp');
  cleanups.push(t.cleanup);
  return t.dir;
}

/** A detached "osqueryd" (own group, a worker child) whose argv names `socket`. */
async function fakeOsqueryd(socket: string): Promise<{ pid: number; worker: number }> {
  const child = execa(process.execPath, [join(FIX, 'fake-osqueryd.mjs'), `--extensions_socket=${socket}`], {
    detached: true,
    reject: false,
    stdin: 'ignore',
  });
  children.push(child);
  started.push(child.pid!);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const line = await waitFor('fake osqueryd pids', () => out.split('\n').find((l) => l.startsWith('{')));
  const info = JSON.parse(line) as { pid: number; worker: number };
  started.push(info.worker);
  return info;
}

describe('reapOrphans', () => {
  // Issue 4: a supervisor killed with SIGKILL leaves osqueryds that the next start reaps.
  it('kills the process groups named by launch records and pidfiles, and removes the stale files', async () => {
    const r = root();
    const sdir = join(r, 's');
    mkdirSync(sdir, { mode: 0o700 });
    const byRecord = await fakeOsqueryd(join(sdir, 'aaaaaaaaaaaa.em'));
    writeFileSync(join(sdir, 'aaaaaaaaaaaa.run'), JSON.stringify({ pid: byRecord.pid }));
    writeFileSync(join(sdir, 'aaaaaaaaaaaa.em'), '');
    writeFileSync(join(sdir, 'aaaaaaaaaaaa.em.4242'), '');
    const byPidfile = await fakeOsqueryd(join(sdir, 'bbbbbbbbbbbb.em'));
    writeFileSync(join(sdir, 'bbbbbbbbbbbb.pid'), `${byPidfile.pid}\n`);
    // No record at all (killed between spawn and record): found by the /proc scan.
    const unrecorded = await fakeOsqueryd(join(sdir, 'cccccccccccc.em'));

    const result = await reapOrphans(r);

    expect(result.killed.sort()).toEqual([byRecord.pid, byPidfile.pid, unrecorded.pid].sort());
    for (const p of [byRecord, byPidfile, unrecorded]) {
      await waitFor('reaped group to die', () => !isAlive(p.pid) && !isAlive(p.worker), 5_000);
    }
    expect(readdirSync(sdir)).toEqual([]);
  });

  it('leaves alone a live pid whose command line is not one of our osqueryds (pid reuse)', async () => {
    const r = root();
    const sdir = join(r, 's');
    mkdirSync(sdir, { mode: 0o700 });
    const other = await fakeOsqueryd('/elsewhere/x.em');
    writeFileSync(join(sdir, 'dddddddddddd.run'), JSON.stringify({ pid: other.pid }));
    const result = await reapOrphans(r);
    expect(result.killed).toEqual([]);
    expect(isAlive(other.pid)).toBe(true);
    expect(existsSync(join(sdir, 'dddddddddddd.run'))).toBe(false);
    process.kill(-other.pid, 'SIGKILL');
  });

  it('does nothing when there is no socket directory', async () => {
    expect(await reapOrphans(root())).toEqual({ killed: [], cleaned: [], leftovers: [] });
  });
});

describe('SupervisorLock', () => {
  it('is held by one supervisor per root and released', () => {
    const r = root();
    const lock = SupervisorLock.acquire(r);
    expect(() => SupervisorLock.acquire(r)).toThrow(expect.objectContaining({ code: 'E_ALREADY_EXISTS' }));
    lock.release();
    lock.release();
    SupervisorLock.acquire(r).release();
  });

  it('takes over a lock whose holder is dead, or whose pid now belongs to another process', async () => {
    const r = root();
    const dead = await execa(process.execPath, ['-e', 'console.log(process.pid)']);
    writeFileSync(join(r, 'supervisor.pid'), JSON.stringify({ pid: Number(dead.stdout), start_ticks: 1 }));
    SupervisorLock.acquire(r).release();
    writeFileSync(join(r, 'supervisor.pid'), JSON.stringify({ pid: process.pid, start_ticks: 1 })); // our pid, wrong start time
    SupervisorLock.acquire(r).release();
    writeFileSync(join(r, 'supervisor.pid'), 'garbage');
    SupervisorLock.acquire(r).release();
  });
});
