// Review of issue 14: osqueryd's JSON (status batches, query contexts, distributed results) is bounded by
// its shape, not only by the Thrift message size: `[{},{},…]` costs an object per 3 bytes once parsed.
import { describe, expect, it } from 'vitest';
import { countContainers } from '../../src/osquery/json-elements.js';
import {
  JSON_BOUNDS,
  dispatchPluginCall,
  type DistributedPlugin,
  type DistributedResults,
  type LoggerPlugin,
  type StatusLog,
  type TablePlugin,
} from '../../src/osquery/plugins.js';

const empties = (n: number): string => `[${Array.from({ length: n }, () => '{}').join(',')}]`;

function logger(): { plugin: LoggerPlugin; statuses: StatusLog[] } {
  const statuses: StatusLog[] = [];
  return {
    statuses,
    plugin: {
      kind: 'logger',
      name: 'kolide_grpc',
      logString: () => undefined,
      logStatus: (e) => void statuses.push(...e),
    },
  };
}

describe('JSON shape bounds on plugin calls', () => {
  it('counts objects and arrays outside strings only, and stops past the limit', () => {
    expect(countContainers('{"a":[1,{"b":"{[{["}],"c":"\\"{"}', 100)).toBe(3);
    expect(countContainers(empties(1000), 10)).toBe(11);
    expect(countContainers('"unterminated {', 10)).toBe(0);
  });

  it('a status batch at the bound is buffered; one entry more fails the call and buffers nothing', async () => {
    const at = logger();
    const ok = await dispatchPluginCall(at.plugin, { status: 'true', log: empties(JSON_BOUNDS.statusBatch) });
    expect(ok.status.code).toBe(0);
    expect(at.statuses).toHaveLength(JSON_BOUNDS.statusBatch);

    const over = logger();
    const refused = await dispatchPluginCall(over.plugin, { status: 'true', log: empties(JSON_BOUNDS.statusBatch + 1) });
    expect(refused.status.code).toBe(1);
    expect(refused.status.message).toMatch(/status batch: more than .* JSON objects and arrays/);
    expect(over.statuses).toHaveLength(0);
  });

  it("braces inside a status line's message do not count", async () => {
    const l = logger();
    const m = '{['.repeat(JSON_BOUNDS.statusBatch);
    const res = await dispatchPluginCall(l.plugin, { status: 'true', log: JSON.stringify([{ s: 0, m }]) });
    expect(res.status.code).toBe(0);
    expect(l.statuses[0]!.m).toBe(m);
  });

  it('distributed results over the bound fail the call before the plugin sees them', async () => {
    const seen: DistributedResults[] = [];
    const plugin: DistributedPlugin = {
      kind: 'distributed',
      name: 'kolide_grpc',
      getQueries: async () => ({ queries: {} }),
      writeResults: async (r) => {
        seen.push(r);
      },
    };
    const rows = (n: number) => `{"queries":{"q":${empties(n)}},"statuses":{"q":0}}`;
    // the outer object, "queries", the row list: 3 containers besides the rows
    const ok = await dispatchPluginCall(plugin, { action: 'writeResults', results: rows(JSON_BOUNDS.distributedResults - 4) });
    expect(ok.status.code).toBe(0);
    expect(seen[0]!.queries.q).toHaveLength(JSON_BOUNDS.distributedResults - 4);
    const refused = await dispatchPluginCall(plugin, { action: 'writeResults', results: rows(JSON_BOUNDS.distributedResults) });
    expect(refused.status.code).toBe(1);
    expect(seen).toHaveLength(1);
  });

  it('a query context over the bound fails the call instead of generating unconstrained', async () => {
    let generated = 0;
    const table: TablePlugin = {
      kind: 'table',
      name: 't',
      columns: [{ name: 'a', type: 'TEXT' }],
      generate: () => {
        generated++;
        return [];
      },
    };
    const list = Array.from({ length: JSON_BOUNDS.queryContext }, (_, i) => ({ op: 2, expr: String(i) }));
    const context = JSON.stringify({ constraints: [{ name: 'a', affinity: 'TEXT', list }] });
    const res = await dispatchPluginCall(table, { action: 'generate', context });
    expect(res.status.code).toBe(1);
    expect(res.status.message).toMatch(/query context/);
    expect(generated).toBe(0);
  });
});
