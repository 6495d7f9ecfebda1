import { execa } from 'execa';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OsquerydProcess } from '../../../src/runtime/instance/process.js';
import { isAlive, reapAll, REPO, waitFor } from '../helpers.js';

const FIX = join(REPO, 'test/runtime/fixtures');
const started: number[] = [];

afterEach(async () => {
  const leaked = await reapAll(started.splice(0));
  expect(leaked, 'processes left alive').toEqual([]);
});

async function spawnFixture(name: string, lines: string[] = []) {
  const proc = await OsquerydProcess.spawn({ file: process.execPath, args: [join(FIX, name)], onLine: (s, l) => lines.push(`${s}:${l}`) });
  started.push(proc.pid);
  return proc;
}

describe('OsquerydProcess', () => {
  it('reads stdout and stderr line by line', async () => {
    const lines: string[] = [];
    const proc = await spawnFixture('stubborn.mjs', lines);
    const info = JSON.parse((await waitFor('pids line', () => lines.find((l) => l.startsWith('stdout:{'))))!.slice(7)) as {
      grandchild: number;
    };
    started.push(info.grandchild);
    await waitFor('stderr line', () => lines.includes('stderr:a line on stderr'));
    await proc.kill();
  });

  it('SIGTERMs the group, then SIGKILLs it after the grace period: the grandchild dies too', async () => {
    const lines: string[] = [];
    const proc = await spawnFixture('stubborn.mjs', lines);
    const info = JSON.parse((await waitFor('pids line', () => lines.find((l) => l.startsWith('stdout:{'))))!.slice(7)) as {
      grandchild: number;
    };
    started.push(info.grandchild);
    const exit = await proc.terminate(300);
    expect(lines).toContain('stdout:got SIGTERM, ignoring');
    expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
    await waitFor('grandchild to die', () => !isAlive(info.grandchild), 5_000);
    expect(isAlive(proc.pid)).toBe(false);
  });

  it('stops a polite child with SIGTERM alone; terminate and kill are idempotent and join', async () => {
    const lines: string[] = [];
    const proc = await spawnFixture('polite.mjs', lines);
    await waitFor('ready', () => lines.includes('stdout:ready'));
    const a = proc.terminate(10_000);
    const b = proc.terminate(10_000);
    expect(await a).toEqual(await b);
    expect((await a).code).toBe(0);
    expect(await proc.kill()).toEqual(await a);
  });

  it('kill() SIGKILLs at once', async () => {
    const lines: string[] = [];
    const proc = await spawnFixture('polite.mjs', lines);
    await waitFor('ready', () => lines.includes('stdout:ready'));
    expect(await proc.kill()).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('fails with E_LAUNCH when the binary does not exist', async () => {
    await expect(OsquerydProcess.spawn({ file: '/nonexistent/osqueryd', args: [] })).rejects.toMatchObject({ code: 'E_LAUNCH' });
  });
});

describe('exit guard', () => {
  // Issue 4: never an orphan osqueryd, even when the supervisor exits without stopping it.
  it.each([['exit'], ['throw']])('kills detached children when the supervisor process ends by %s', async (how) => {
    const r = await execa(process.execPath, [join(FIX, 'exit-guard.mjs'), how], { reject: false, timeout: 20_000 });
    const info = JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('{'))!) as { pid: number; grandchild: number };
    started.push(info.pid, info.grandchild);
    expect(r.exitCode).not.toBe(0);
    await waitFor('guarded group to die', () => !isAlive(info.pid) && !isAlive(info.grandchild), 5_000);
  });
});
