// Issue 4: the supervisor as a real process — SIGTERM leaves nothing behind;
// after SIGKILL the next start reaps what was left.
import { execa, type ResultPromise } from 'execa';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, osquerydPath, reapAll, REPO, simAvailable, tempRoot, waitFor } from './helpers.js';

const SUPERVISOR = join(REPO, 'test/runtime/fixtures/supervisor.mjs');
const started = new Set<number>();
const children: ResultPromise[] = [];
const cleanups: Array<() => void> = [];
const outputs: string[] = [];

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') process.stderr.write(outputs.join('\n'));
  for (const c of children) if (c.pid) started.add(c.pid);
  const leaked = await reapAll(started);
  for (const c of children.splice(0)) await c.catch(() => undefined);
  started.clear();
  outputs.length = 0;
  while (cleanups.length) cleanups.pop()!();
  expect(leaked, 'processes left alive').toEqual([]);
});

beforeAll(() => {
  if (!simAvailable()) throw new Error('dist/src/sim/main.js is missing: run `npx tsc -p .` once the stand-in exists');
  if (!existsSync(join(REPO, 'dist/src/runtime/runner.js'))) throw new Error('dist/src/runtime is missing: run `npx tsc -p .`');
});

interface Ready {
  event: 'ready';
  pid: number;
  socketDir: string;
  instances: Record<string, { pid: number; run_id: string }>;
  reaped: number[];
}

const QUIET = join(REPO, 'test/runtime/fixtures/osqueryd-quiet.sh');

function startSupervisor(root: string, ids: string[], expected = ids.length, binary = osquerydPath()) {
  const child = execa(process.execPath, [SUPERVISOR, root, binary, ids.join(','), String(expected)], {
    reject: false,
    stdin: 'ignore',
    env: { LAUNCHER_LOG_LEVEL: 'silent' },
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => outputs.push(d.toString()));
  const events = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event: string });
  const ready = async () => {
    const r = (await waitFor('supervisor ready', () => events().find((e) => e.event === 'ready'), 30_000)) as Ready;
    for (const i of Object.values(r.instances)) started.add(i.pid);
    return r;
  };
  return { child, ready, events };
}

describe('supervisor process', () => {
  it('on SIGTERM stops every osqueryd and leaves no child process, socket or pidfile behind', async () => {
    const t = tempRoot('sp');
    cleanups.push(t.cleanup);
    const sup = startSupervisor(t.dir, ['vendor', 'tenant']);
    const ready = await sup.ready();
    const pids = Object.values(ready.instances).map((i) => i.pid);
    expect(pids).toHaveLength(2);
    expect(readdirSync(ready.socketDir).some((f) => f.endsWith('.em'))).toBe(true);
    sup.child.kill('SIGTERM');
    const result = await sup.child;
    expect(result.exitCode).toBe(0);
    expect(sup.events().at(-1)).toMatchObject({ event: 'exit', code: 'E_SHUTDOWN' });
    for (const p of pids) expect(isAlive(p)).toBe(false);
    expect(readdirSync(ready.socketDir)).toEqual([]);
    expect(existsSync(join(t.dir, 'supervisor.pid'))).toBe(false);
  });

  it('after SIGKILL, the next start reaps the osqueryds left behind and relaunches the persisted registrations', async () => {
    const t = tempRoot('sk');
    cleanups.push(t.cleanup);
    // Output to /dev/null: with the supervisor's pipes gone the stand-in would die of EPIPE on
    // its next log line, and there would be nothing left to reap (see the fixture).
    const first = startSupervisor(t.dir, ['vendor', 'tenant'], 2, QUIET);
    const r1 = await first.ready();
    const orphans = Object.values(r1.instances).map((i) => i.pid);
    first.child.kill('SIGKILL');
    await first.child;
    // Nothing can run in a SIGKILLed process: the osqueryds are still there.
    for (const p of orphans) expect(isAlive(p)).toBe(true);
    expect(existsSync(join(t.dir, 'supervisor.pid'))).toBe(true);

    const second = startSupervisor(t.dir, [], 2);
    const r2 = await second.ready();
    expect(r2.reaped.sort()).toEqual([...orphans].sort());
    for (const p of orphans) expect(isAlive(p)).toBe(false);
    expect(Object.keys(r2.instances).sort()).toEqual(['tenant', 'vendor']);
    for (const [id, i] of Object.entries(r2.instances)) expect(i.run_id).not.toBe(r1.instances[id]!.run_id);
    second.child.kill('SIGTERM');
    expect((await second.child).exitCode).toBe(0);
    expect(readdirSync(r2.socketDir)).toEqual([]);
  });
});
