import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
import { RunHistoryStore } from '../../src/store/run-history.js';
import { tempRoot } from '../runtime/helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function store(keep?: number) {
  const t = tempRoot('rh');
  cleanups.push(t.cleanup);
  const db = openDatabase(join(t.dir, 'h.sqlite'));
  cleanups.push(() => db.close());
  return new RunHistoryStore(db, keep === undefined ? {} : { keep });
}

describe('RunHistoryStore', () => {
  it('keeps the newest N runs per registration, each registration separately', () => {
    const h = store(3);
    for (let i = 0; i < 5; i++) h.start({ registrationId: 'a', runId: `a${i}`, osquerydPath: '/bin/o' });
    h.start({ registrationId: 'b', runId: 'b0', osquerydPath: '/bin/o' });
    expect(h.list('a').map((r) => r.runId)).toEqual(['a4', 'a3', 'a2']);
    expect(h.list('b').map((r) => r.runId)).toEqual(['b0']);
    expect(h.list('a', 1).map((r) => r.runId)).toEqual(['a4']);
  });

  it('defaults to 20 runs', () => {
    const h = store();
    for (let i = 0; i < 25; i++) h.start({ registrationId: 'a', runId: `r${i}`, osquerydPath: '/bin/o' });
    expect(h.list('a', 100)).toHaveLength(20);
  });

  it('records pid, connect and exit; the first exit wins', () => {
    const h = store();
    h.start({ registrationId: 'a', runId: 'r1', osquerydPath: '/bin/o', startedAt: '2026-11-21T00:00:00.000Z' });
    h.setPid('r1', 1234, 'watchdog');
    h.setConnected('r1', { instanceId: 'iid', version: '5.12.1', at: '2026-11-21T00:00:01.000Z' });
    h.setExited('r1', { code: null, signal: 'SIGKILL', error: 'osqueryd killed', at: '2026-11-21T00:00:09.000Z' });
    h.setExited('r1', { code: 0, error: 'later' });
    expect(h.get('r1')).toEqual({
      registrationId: 'a',
      runId: 'r1',
      osquerydPath: '/bin/o',
      pid: 1234,
      limitsMode: 'watchdog',
      instanceId: 'iid',
      osquerydVersion: '5.12.1',
      startedAt: '2026-11-21T00:00:00.000Z',
      connectedAt: '2026-11-21T00:00:01.000Z',
      exitedAt: '2026-11-21T00:00:09.000Z',
      exitSignal: 'SIGKILL',
      error: 'osqueryd killed',
    });
  });

  it('closes runs a dead supervisor left open, and deletes a registration’s runs', async () => {
    const h = store();
    h.start({ registrationId: 'a', runId: 'r1', osquerydPath: '/bin/o' });
    h.start({ registrationId: 'a', runId: 'r2', osquerydPath: '/bin/o' });
    h.setExited('r1', { code: 1, error: 'boom' });
    await expect(h.closeUnfinished('supervisor died')).resolves.toBe(1);
    expect(h.get('r2')).toMatchObject({ error: 'supervisor died' });
    expect(h.get('r1')).toMatchObject({ error: 'boom' });
    await h.removeRegistration('a');
    expect(h.list('a')).toEqual([]);
  });
});
