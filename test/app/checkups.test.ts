// issue 18: self-checkup rounds record each check's latest status, when it changed and from what, and report
// only changes (a non-passing check counts as a change in the first round). The checks are the injected seam
// (the doctor's real checks run in test/app/signals.test.ts through a real supervisor).
import { describe, expect, it } from 'vitest';
import { type CheckupResult, Checkups } from '../../src/app/checkups.js';
import { silentLogger } from '../../src/log/logger.js';

describe('Checkups', () => {
  it('keeps the latest result per check and reports status changes once', async () => {
    const rounds: CheckupResult[][] = [
      [
        { name: 'config', status: 'pass', detail: 'ok' },
        { name: 'cgroups', status: 'warn', detail: 'memory not writable' },
      ],
      [
        { name: 'config', status: 'pass', detail: 'ok' },
        { name: 'cgroups', status: 'warn', detail: 'memory not writable' },
      ],
      [
        { name: 'config', status: 'fail', detail: 'gone' },
        { name: 'cgroups', status: 'pass', detail: 'fine' },
      ],
    ];
    let i = 0;
    const changes: string[][] = [];
    const c = new Checkups({
      run: async () => rounds[i++]!,
      logger: silentLogger(),
      onChange: (changed) => changes.push(changed.map((x) => `${x.name}:${x.previous_status ?? 'new'}->${x.status}`)),
    });
    await c.runOnce();
    const firstChanged = c.latest().find((x) => x.name === 'cgroups')!.changed_at;
    await c.runOnce();
    expect(c.latest().find((x) => x.name === 'cgroups')!.changed_at).toBe(firstChanged);
    await c.runOnce();
    expect(changes).toEqual([['cgroups:new->warn'], ['config:pass->fail', 'cgroups:warn->pass']]);
    expect(c.latest().map((x) => [x.name, x.status, x.previous_status])).toEqual([
      ['config', 'fail', 'pass'],
      ['cgroups', 'pass', 'warn'],
    ]);
    expect(c.rounds).toBe(3);
    await c.stop();
  });

  it('a round that throws is one failing check; rounds never overlap', async () => {
    let calls = 0;
    let release!: () => void;
    const c = new Checkups({
      run: async () => {
        calls++;
        await new Promise<void>((r) => (release = r));
        throw new Error('boom');
      },
      logger: silentLogger(),
    });
    const a = c.runOnce();
    const b = c.runOnce();
    release();
    await Promise.all([a, b]);
    expect(calls).toBe(1);
    expect(c.latest()).toMatchObject([{ name: 'checkups', status: 'fail', detail: 'the checkups could not run: boom' }]);
    await c.stop();
  });
});
