/**
 * State-table `generate` latency (issue 7) with 50 real instances: the
 * supervisor (LauncherApp) runs 50 registrations, each with its own osqueryd
 * stand-in and kolide_grpc extension (bench/state-fixture.ts), and every state
 * table is read three ways, in the vendor scope (all 50 registrations) and in
 * one tenant's scope:
 *
 * - `direct`: the table plugin's generate() in the supervisor process — the
 *   LiveState read (runner status, SQLite stats/history) plus rendering. This
 *   is the time the supervisor's event loop is busy per query.
 * - `thrift`: the `call` osqueryd makes on the extension's socket (client in
 *   this process too, so it includes both ends of the Thrift exchange).
 * - `osquery`: `select * from <table>` through the instance's osqueryd
 *   stand-in (manager `query`), end to end; vendor scope only.
 *
 * p50/p95 per run (`CALLS` calls, `OSQUERY_CALLS` for the end-to-end path),
 * then the median over `RUNS` runs. History holds one run per registration
 * (nothing restarted), so history rows = 50 in the vendor scope.
 *
 * Run: node dist/bench/state-generate.js
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { ExtensionClient, ExtensionManagerClient } from '../src/osquery/client.js';
import type { QueryContext, TablePlugin } from '../src/osquery/plugins.js';
import type { Scope } from '../src/state/table.js';
import { STATE_TABLES, stateTablePlugins } from '../src/state/tables.js';
import { median, percentile, round, writeResult } from './lib.js';
import { startStateFixture } from './state-fixture.js';

const INSTANCES = 50;
const RUNS = 5;
const CALLS = 200;
const OSQUERY_CALLS = 40;
const TENANT = 't07';
const EMPTY: QueryContext = { constraints: [] };

type Stats = { p50_ms: number; p95_ms: number };

async function timeCalls(n: number, fn: () => Promise<unknown> | unknown): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

function summarise(runs: number[][]): Stats & { runs_p50: number[]; runs_p95: number[] } {
  const p50 = runs.map((r) => percentile(r, 50));
  const p95 = runs.map((r) => percentile(r, 95));
  return {
    p50_ms: round(median(p50), 3),
    p95_ms: round(median(p95), 3),
    runs_p50: p50.map((x) => round(x, 3)),
    runs_p95: p95.map((x) => round(x, 3)),
  };
}

async function main(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  console.log(`starting ${INSTANCES} instances…`);
  const fx = await startStateFixture(INSTANCES);
  console.log(`healthy after ${fx.startupSeconds.toFixed(1)} s`);
  const vendor = await fx.sockets('kolide');
  const tenant = await fx.sockets(TENANT);
  const clients = {
    vendorExt: new ExtensionClient(vendor.extension, { timeoutMs: 10_000 }),
    tenantExt: new ExtensionClient(tenant.extension, { timeoutMs: 10_000 }),
    vendorManager: new ExtensionManagerClient(vendor.manager, { timeoutMs: 10_000 }),
  };
  const scopes: Record<'vendor' | 'tenant', Scope> = { vendor: { kind: 'all' }, tenant: { kind: 'tenant', registrationId: TENANT } };
  const plugins = (scope: Scope): Map<string, TablePlugin> => new Map(stateTablePlugins(() => fx.app.state, scope).map((p) => [p.name, p]));
  const byScope = { vendor: plugins(scopes.vendor), tenant: plugins(scopes.tenant) };
  const rowsSeen: Record<string, Record<string, number>> = {};
  const samples: Record<string, number[][]> = {};
  const push = (key: string, values: number[]) => (samples[key] ??= []).push(values);
  try {
    // Warm-up: JIT, statement caches, connections.
    for (const t of STATE_TABLES) {
      for (const scope of ['vendor', 'tenant'] as const) {
        const rows = await byScope[scope].get(t.name)!.generate(EMPTY);
        (rowsSeen[t.name] ??= {})[scope] = rows.length;
        for (let i = 0; i < 20; i++) await byScope[scope].get(t.name)!.generate(EMPTY);
      }
      await clients.vendorExt.call('table', t.name, { action: 'generate', context: JSON.stringify(EMPTY) });
      await clients.vendorManager.query(`select * from ${t.name}`);
    }
    for (let run = 0; run < RUNS; run++) {
      for (const t of STATE_TABLES) {
        for (const scope of ['vendor', 'tenant'] as const) {
          const plugin = byScope[scope].get(t.name)!;
          push(`${t.name}.${scope}.direct`, await timeCalls(CALLS, () => plugin.generate(EMPTY)));
          const ext = scope === 'vendor' ? clients.vendorExt : clients.tenantExt;
          push(
            `${t.name}.${scope}.thrift`,
            await timeCalls(CALLS, () => ext.call('table', t.name, { action: 'generate', context: JSON.stringify(EMPTY) })),
          );
        }
        push(`${t.name}.vendor.osquery`, await timeCalls(OSQUERY_CALLS, () => clients.vendorManager.query(`select * from ${t.name}`)));
      }
      console.log(`run ${run + 1}/${RUNS} done`);
    }
  } finally {
    for (const c of Object.values(clients)) c.close();
    await fx.stop();
  }
  const tables: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const [key, runs] of Object.entries(samples)) {
    const [table, scope, path] = key.split('.') as [string, string, string];
    ((tables[table] ??= {})[scope] ??= { rows: rowsSeen[table]![scope] })[path] = summarise(runs);
  }
  const file = writeResult('state-generate', {
    measured:
      `${INSTANCES} real instances (LauncherApp, osqueryd-sim stand-ins, kolide_grpc extensions, in-process device server), ` +
      'generate() of each state table: direct (in the supervisor), thrift (extension socket call), osquery (select through the stand-in)',
    instances: INSTANCES,
    runs: RUNS,
    calls_per_run: CALLS,
    osquery_calls_per_run: OSQUERY_CALLS,
    tenant_scope: TENANT,
    startup_to_all_healthy_s: round(fx.startupSeconds, 1),
    load_avg_1m: { before: round(loadBefore, 2), after: round(loadavg()[0]!, 2) },
    tables,
  });
  console.log(JSON.stringify(tables, null, 2));
  console.log(`written to ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
