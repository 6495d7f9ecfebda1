// Issue 3: osqueryd-sim's distributed query loop against a distributed plugin extension.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExtensionServer } from '../../src/osquery/extension-server.js';
import type { DistributedQueries, DistributedResults } from '../../src/osquery/plugins.js';
import { SimHarness, waitFor } from './helpers.js';

let h: SimHarness;
beforeEach(() => {
  h = new SimHarness();
});
afterEach(async () => {
  await h.cleanup();
});

describe('distributed queries', () => {
  it('runs getQueries batches honouring discovery and writes results, resending what the plugin refused', async () => {
    const p = h.paths();
    const batches: DistributedQueries[] = [
      {
        queries: { q1: "select 1 as one, 'x' as two", bad: 'selec 1', d_no: 'select 2 as n', d_yes: 'select 3 as n' },
        discovery: { d_no: 'select 1 where 1 = 0', d_yes: 'select 1' },
      },
      { queries: { q2: 'select count(*) as c from osquery_info' } },
    ];
    const written: DistributedResults[] = [];
    let refuse = 1;
    const ext = new ExtensionServer({
      name: 'dist',
      managerPath: p.socket,
      pingIntervalMs: 0,
      plugins: [
        {
          kind: 'distributed',
          name: 'dist',
          getQueries: async () => batches.shift() ?? { queries: {} },
          writeResults: async (r) => {
            written.push(r);
            if (refuse-- > 0) throw new Error('server unavailable');
          },
        },
      ],
    });
    h.defer(() => ext.stop());
    await h.start(p, [
      '--disable_distributed=false',
      '--distributed_plugin=dist',
      '--distributed_interval=1',
      '--extensions_require=dist',
      '--extensions_timeout=10',
    ]);
    await ext.start();
    await waitFor(() => written.length >= 2, 15_000, 'two writeResults calls');

    const [refused, resent] = written as [DistributedResults, DistributedResults];
    expect(refused.queries).toEqual({ q1: [{ one: '1', two: 'x' }], bad: [], d_yes: [{ n: '3' }] });
    expect(refused.statuses).toEqual({ q1: 0, bad: 1, d_yes: 0 });
    expect(refused.messages).toEqual({ q1: '', bad: 'near "selec": syntax error', d_yes: '' });
    expect(Object.keys(refused.stats.q1!).sort()).toEqual(['memory', 'system_time', 'user_time', 'wall_time_ms']);
    // The refused batch is sent again with the next one.
    expect(resent.queries).toEqual({ ...refused.queries, q2: [{ c: '1' }] });
    expect(resent.statuses).toEqual({ ...refused.statuses, q2: 0 });
    const log = h.queryLog(p);
    expect(log.filter((q) => q.source === 'distributed').map((q) => q.name)).toEqual(['q1', 'bad', 'd_yes', 'q2']);
    expect(log.filter((q) => q.source === 'discovery').map((q) => q.name)).toEqual(['d_no', 'd_yes']);
  });

  it('exits 78 when the distributed plugin does not exist', async () => {
    const p = h.paths();
    const sim = h.spawn([...h.baseArgs(p), '--disable_distributed=false', '--distributed_plugin=nothere']);
    expect(await sim.exited).toEqual({ code: 78, signal: null });
    expect(sim.stderr).toContain('Cannot activate nothere distributed plugin: Unknown registry plugin: nothere');
  });
});
