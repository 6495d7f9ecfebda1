/**
 * Extension round trips over a real Unix socket (issue 2): `ping`, and `call`
 * of a table returning 1,000 rows of 10 columns. Calls/s and p50/p99 latency,
 * median of 5 runs. Run: node dist/bench/thrift-roundtrip.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ExtensionServer } from '../src/osquery/extension-server.js';
import { ExtensionClient } from '../src/osquery/client.js';
import { ThriftServer } from '../src/osquery/server.js';
import { ExtensionManagerProcessor, extensionInfo, response, status } from '../src/osquery/protocol.js';
import { benchManagerHandler, benchTable } from './thrift-fixture.js';
import { median, percentile, round, writeResult } from './lib.js';

const RUNS = 5;
async function measure(n: number, fn: () => Promise<unknown>): Promise<{ callsPerSec: number; p50: number; p99: number }> {
  const lat: number[] = [];
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    lat.push(performance.now() - t);
  }
  const secs = (performance.now() - start) / 1000;
  return { callsPerSec: n / secs, p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bt-'));
  const managerPath = join(dir, 'm.em');
  const manager = new ThriftServer(
    managerPath,
    new ExtensionManagerProcessor(benchManagerHandler({ status, response, extensionInfo }, 'bench')),
  );
  await manager.listen();
  const ext = new ExtensionServer({ name: 'bench', managerPath, plugins: [benchTable], pingIntervalMs: 0 });
  await ext.start();
  const client = new ExtensionClient(ext.socketPath, { timeoutMs: 30_000 });
  const ping: Array<Awaited<ReturnType<typeof measure>>> = [];
  const call: Array<Awaited<ReturnType<typeof measure>>> = [];
  await measure(200, () => client.ping()); // warm-up
  for (let run = 0; run < RUNS; run++) {
    ping.push(await measure(2000, () => client.ping()));
    call.push(await measure(50, () => client.call('table', 'bench_rows', { action: 'generate', context: '{"constraints":[]}' })));
  }
  client.close();
  await ext.stop();
  await manager.close();
  rmSync(dir, { recursive: true, force: true });
  const summary = (xs: typeof ping) => ({
    calls_per_sec: round(median(xs.map((x) => x.callsPerSec)), 1),
    p50_ms: round(median(xs.map((x) => x.p50))),
    p99_ms: round(median(xs.map((x) => x.p99))),
  });
  const result = { runs: RUNS, ping: { calls: 2000, ...summary(ping) }, table_call_1000x10: { calls: 50, ...summary(call) } };
  const file = writeResult('thrift-roundtrip', result);
  console.log(JSON.stringify(result, null, 2));
  console.log(`written to ${file}`);
}

await main();
