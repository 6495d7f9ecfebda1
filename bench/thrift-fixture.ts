/**
 * What the Thrift benchmarks serve: the 1000-row x 10-column table
 * `bench_rows`, and a minimal extension manager handler that accepts one
 * registration (uuid 4242) and is idle afterwards. The protocol helpers are
 * passed in so bench/thrift-peers/project-server.ts can use those of another
 * build (an older commit) with the same fixture.
 */
import type { TablePlugin } from '../src/osquery/plugins.js';
import type { ExtensionManagerHandler } from '../src/osquery/protocol.js';

type ProtocolHelpers = Pick<typeof import('../src/osquery/protocol.js'), 'status' | 'response' | 'extensionInfo'>;

export const BENCH_COLUMNS = Array.from({ length: 10 }, (_, i) => ({ name: `col${i}`, type: 'TEXT' as const }));
export const BENCH_ROWS: Record<string, string>[] = Array.from({ length: 1000 }, (_, r) =>
  Object.fromEntries(BENCH_COLUMNS.map((c, i) => [c.name, `value-${r}-${i}`])),
);
export const benchTable: TablePlugin = { kind: 'table', name: 'bench_rows', columns: BENCH_COLUMNS, generate: () => BENCH_ROWS };

export const BENCH_UUID = 4242;

export function benchManagerHandler(p: ProtocolHelpers, extensionName: string): ExtensionManagerHandler {
  let uuid = 0;
  return {
    ping: () => p.status(0, 'OK'),
    call: () => p.response(p.status(1, 'n/a')),
    shutdown: () => undefined,
    extensions: () => ({ [String(uuid)]: p.extensionInfo({ name: extensionName }) }),
    options: () => ({}),
    registerExtension: () => p.status(0, 'OK', (uuid = BENCH_UUID)),
    deregisterExtension: () => p.status(0, 'OK'),
    query: () => p.response(p.status(0, 'OK')),
    getQueryColumns: () => p.response(p.status(0, 'OK')),
  };
}
