/**
 * The query loop of bench/state-ingest.ts, in its own process so that only
 * the supervisor's side of each query (the extension server answering
 * `generate`) competes with log ingest, as when osqueryd asks. Usage:
 * `node dist/bench/state-ingest-child.js <extension socket> <pause ms> [state|ping]`;
 * prints `ready`, loops until a line arrives on stdin, then prints one JSON
 * line with its loop count and latencies. `ping` sends two pings per loop
 * instead of the two state-table calls: the same traffic without state reads.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { ExtensionClient } from '../src/osquery/client.js';
import { percentile, round } from './lib.js';

const [socket, pauseArg, modeArg] = process.argv.slice(2);
if (!socket) throw new Error('usage: state-ingest-child <extension socket> <pause ms> [state|ping]');
const pauseMs = Number(pauseArg ?? 5);
const ping = modeArg === 'ping';
const TABLES = ['kolide_launcher_instances', 'kolide_launcher_log_buffers'];
const context = JSON.stringify({ constraints: [] });

const client = new ExtensionClient(socket, { timeoutMs: 10_000 });
let stop = false;
process.stdin.on('data', () => (stop = true));
process.stdin.on('end', () => (stop = true));

const loops: number[] = [];
let rows = 0;
for (const t of TABLES) await client.call('table', t, { action: 'generate', context });
process.stdout.write('ready\n');
const started = performance.now();
const cpu = process.cpuUsage();
while (!stop) {
  const t = performance.now();
  for (const table of TABLES) {
    if (ping) {
      await client.ping();
      continue;
    }
    const res = await client.call('table', table, { action: 'generate', context });
    if (res.status.code !== 0) throw new Error(`${table}: ${res.status.message}`);
    rows += res.response.length;
  }
  loops.push(performance.now() - t);
  await sleep(pauseMs);
}
const seconds = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
client.close();
process.stdout.write(
  `${JSON.stringify({ loops: loops.length, queries_per_sec: round((loops.length * TABLES.length) / seconds, 1), rows_per_loop: loops.length ? round(rows / loops.length, 1) : 0, loop_p50_ms: round(percentile(loops, 50), 3), loop_p95_ms: round(percentile(loops, 95), 3), seconds: round(seconds, 3), client_cpu_ms_per_loop: loops.length ? round((used.user + used.system) / 1000 / loops.length, 3) : 0 })}\n`,
);
