/**
 * Log ingest with and without state-table reads (issue 7: reading state
 * never blocks the hot paths). The real supervisor (LauncherApp) runs
 * `INSTANCES` registrations with osqueryd stand-ins (bench/state-fixture.ts).
 * Ingest is as bench/device-ingest.ts measures it — a kolide_grpc logger
 * plugin appending 1 KiB result lines to the durable SQLite buffer — here on
 * the supervisor's own database connection and into the vendor's buffer, so
 * the state reads and the appends share the one thread and the one SQLite
 * connection, as in production.
 *
 * Conditions, each for a whole ingest run:
 * - `without`: ingest alone;
 * - `state_thrift`: a query loop in a child process (bench/state-ingest-child.ts)
 *   calls `generate` of kolide_launcher_instances and kolide_launcher_log_buffers
 *   on the vendor extension's socket (the call osqueryd makes), pausing
 *   `PAUSE_MS` between loops;
 * - `ping_thrift`: the same child and cadence sending pings instead — the
 *   cost of any extension traffic (and of one more busy process on the
 *   host) without state reads;
 * - `state_direct`: the two tables' generate() called in the supervisor
 *   process every `PAUSE_MS` — the state reads alone, no Thrift, no process.
 * The order of conditions rotates between runs; figures are medians over
 * `RUNS` runs; `ratio_*` = condition / without (1.0: no cost), and
 * `state_vs_ping` = state_thrift / ping_thrift isolates the reads. Beside
 * the wall-clock rate, `cpu_us_per_line` is the supervisor process's CPU
 * time (user + system) per ingested line, everything it did included (the
 * answered queries too): less sensitive than the rate to other load on the
 * host, which on a shared 2-core machine dominates the run-to-run spread.
 * `query_cost` measures, without ingest, the supervisor's CPU per query
 * (CPU over a window with the loop running minus an idle window) and, for
 * the child loops, the querying process's own CPU per query.
 *
 * Run: node dist/bench/state-ingest.js
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { DeviceClient } from '../src/device/index.js';
import type { TablePlugin } from '../src/osquery/plugins.js';
import { stateTablePlugins } from '../src/state/tables.js';
import { retryBusy } from '../src/store/busy.js';
import { LogBuffer } from '../src/store/log-buffer.js';
import { createKolideExtension, type KolideExtension } from '../extensions/kolide_grpc/index.js';
import { median, percentile, round, writeResult } from './lib.js';
import { startStateFixture } from './state-fixture.js';
import { parseRegistrationId as rid } from '../src/registration.js';

const INSTANCES = 10;
const RUNS = 9;
const LINE_BYTES = 1024;
const LINES = 10_000;
const PAUSE_MS = 5;
const COST_REPS = 3;
const COST_WINDOW_MS = 3_000;
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'state-ingest-child.js');

function line(i: number): string {
  const head = JSON.stringify({
    name: 'pack:bench:query',
    hostIdentifier: 'h',
    calendarTime: 'Mon Jun 10 12:00:00 2024 UTC',
    unixTime: 1718020800,
    seq: i,
    pad: '',
  });
  return head.replace('"pad":""', `"pad":"${'x'.repeat(LINE_BYTES - head.length)}"`);
}

interface LoopReport {
  loops: number;
  queries_per_sec: number;
  rows_per_loop: number;
  loop_p50_ms: number;
  loop_p95_ms: number;
  seconds: number;
  /** The querying process's own CPU (child only). */
  client_cpu_ms_per_loop?: number;
}

/** Start the query loop; resolves once it answered its first queries. `stop()` ends it and returns its report. */
async function queryLoop(socket: string, mode: 'state' | 'ping'): Promise<{ stop: () => Promise<LoopReport> }> {
  const child = spawn(process.execPath, [CHILD, socket, String(PAUSE_MS), mode], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.value !== 'ready') {
    child.kill('SIGKILL');
    throw new Error(`query loop did not start: ${String(first.value)}`);
  }
  return {
    async stop() {
      const exited = once(child, 'exit');
      child.stdin!.end('stop\n');
      const report = await lines.next();
      await exited;
      return JSON.parse(String(report.value)) as LoopReport;
    },
  };
}

/** generate() of the two tables in this process every PAUSE_MS, as the extension server would run it. */
function directLoop(plugins: TablePlugin[]): { stop: () => Promise<LoopReport> } {
  const loops: number[] = [];
  let rows = 0;
  let stopped = false;
  const started = performance.now();
  const done = (async () => {
    while (!stopped) {
      const t = performance.now();
      for (const p of plugins) rows += (await p.generate({ constraints: [] })).length;
      loops.push(performance.now() - t);
      await sleep(PAUSE_MS);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await done;
      const seconds = (performance.now() - started) / 1000;
      return {
        loops: loops.length,
        queries_per_sec: round((loops.length * plugins.length) / seconds, 1),
        rows_per_loop: loops.length ? round(rows / loops.length, 1) : 0,
        loop_p50_ms: round(percentile(loops, 50), 3),
        loop_p95_ms: round(percentile(loops, 95), 3),
        seconds: round(seconds, 3),
      };
    },
  };
}

async function ingest(ext: KolideExtension, lines: string[], inFlight: number): Promise<{ rate: number; cpuUsPerLine: number }> {
  let next = 0;
  const t = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < lines.length) await ext.loggerPlugin.logString(lines[next++]!, 'string');
    }),
  );
  const used = process.cpuUsage(cpu);
  return { rate: lines.length / ((performance.now() - t) / 1000), cpuUsPerLine: (used.user + used.system) / lines.length };
}

async function main(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const fx = await startStateFixture(INSTANCES);
  console.log(`${INSTANCES} instances healthy after ${fx.startupSeconds.toFixed(1)} s`);
  const { extension } = await fx.sockets('kolide');
  // Never contacted: this extension only ingests (it is not started).
  const client = new DeviceClient({ serverUrl: 'http://127.0.0.1:9', insecureTransport: true });
  const ext = createKolideExtension({ registrationId: rid('kolide'), enrollSecret: 'x', client, db: fx.app.db });
  const buffer = new LogBuffer(fx.app.db);
  const lines = Array.from({ length: LINES }, (_, i) => line(i));
  const direct = stateTablePlugins(() => fx.app.state, { kind: 'all' }).filter(
    (p) => p.name === 'kolide_launcher_instances' || p.name === 'kolide_launcher_log_buffers',
  );
  const modes = { sequential: 1, concurrent_64: 64 } as const;
  const CONDITIONS = ['without', 'state_thrift', 'ping_thrift', 'state_direct'] as const;
  type Condition = (typeof CONDITIONS)[number];
  const rates: Record<string, Record<Condition, number[]>> = {};
  const cpu: Record<string, Record<Condition, number[]>> = {};
  const loopReports: Record<Exclude<Condition, 'without'>, LoopReport[]> = { state_thrift: [], ping_thrift: [], state_direct: [] };
  const costs: Partial<Record<Condition, Array<{ cpuMsPerSec: number; queriesPerSec: number; clientCpuMsPerLoop: number | undefined }>>> =
    {};
  const start = async (c: Condition) =>
    c === 'state_thrift'
      ? queryLoop(extension, 'state')
      : c === 'ping_thrift'
        ? queryLoop(extension, 'ping')
        : c === 'state_direct'
          ? directLoop(direct)
          : undefined;
  try {
    await ingest(ext, lines.slice(0, 5_000), 8); // warm-up
    // The checkpoint worker may hold the write lock for a moment (ADR 0023): retry as the product does.
    await retryBusy('clearing the buffer', () => buffer.clear('kolide'), { budgetMs: 10_000 });
    // Supervisor CPU per query, without ingest: CPU over a window with each loop running, minus an idle window.
    for (let rep = 0; rep < COST_REPS; rep++) {
      for (const condition of CONDITIONS) {
        const loop = await start(condition);
        const t = performance.now();
        const before = process.cpuUsage();
        await sleep(COST_WINDOW_MS);
        const used = process.cpuUsage(before);
        const seconds = (performance.now() - t) / 1000;
        const report = loop ? await loop.stop() : undefined;
        (costs[condition] ??= []).push({
          cpuMsPerSec: (used.user + used.system) / 1000 / seconds,
          queriesPerSec: report?.queries_per_sec ?? 0,
          clientCpuMsPerLoop: report?.client_cpu_ms_per_loop,
        });
      }
    }
    for (let run = 0; run < RUNS; run++) {
      for (const [mode, inFlight] of Object.entries(modes)) {
        const r = (rates[mode] ??= { without: [], state_thrift: [], ping_thrift: [], state_direct: [] });
        const c = (cpu[mode] ??= { without: [], state_thrift: [], ping_thrift: [], state_direct: [] });
        // Rotate the order, so drift over time hits every condition.
        const order = CONDITIONS.map((_, i) => CONDITIONS[(i + run) % CONDITIONS.length]!);
        for (const condition of order) {
          const loop = await start(condition);
          const res = await ingest(ext, lines, inFlight);
          r[condition].push(res.rate);
          c[condition].push(res.cpuUsPerLine);
          if (loop) loopReports[condition as Exclude<Condition, 'without'>].push(await loop.stop());
          await retryBusy('clearing the buffer', () => buffer.clear('kolide'), { budgetMs: 10_000 });
        }
      }
      console.log(`run ${run + 1}/${RUNS} done`);
    }
  } finally {
    await ext.stop();
    client.close();
    await fx.stop();
  }
  const summary = Object.fromEntries(
    Object.entries(rates).map(([mode, r]) => {
      const m = (c: Condition) => median(r[c]);
      return [
        mode,
        {
          lines_per_sec: Object.fromEntries(CONDITIONS.map((c) => [c, round(m(c), 0)])),
          ratio_state_thrift: round(m('state_thrift') / m('without'), 3),
          ratio_ping_thrift: round(m('ping_thrift') / m('without'), 3),
          ratio_state_direct: round(m('state_direct') / m('without'), 3),
          state_vs_ping: round(m('state_thrift') / m('ping_thrift'), 3),
          cpu_us_per_line: Object.fromEntries(CONDITIONS.map((k) => [k, round(median(cpu[mode]![k]), 1)])),
          runs: Object.fromEntries(CONDITIONS.map((c) => [c, r[c].map((x) => round(x, 0))])),
        },
      ];
    }),
  );
  const loops = Object.fromEntries(
    Object.entries(loopReports).map(([c, reports]) => [
      c,
      {
        queries_per_sec_median: round(median(reports.map((l) => l.queries_per_sec)), 1),
        rows_per_loop: reports[0]?.rows_per_loop ?? 0,
        loop_p50_ms_median: round(median(reports.map((l) => l.loop_p50_ms)), 3),
        loop_p95_ms_median: round(median(reports.map((l) => l.loop_p95_ms)), 3),
      },
    ]),
  );
  const idle = median(costs.without!.map((c) => c.cpuMsPerSec));
  const queryCost = Object.fromEntries(
    CONDITIONS.filter((c) => c !== 'without').map((c) => {
      const xs = costs[c]!;
      const extra = median(xs.map((x) => x.cpuMsPerSec)) - idle;
      const qps = median(xs.map((x) => x.queriesPerSec));
      const client = xs.map((x) => x.clientCpuMsPerLoop).filter((x): x is number => x !== undefined);
      return [
        c,
        {
          queries_per_sec: round(qps, 1),
          supervisor_cpu_ms_per_sec_over_idle: round(extra, 1),
          supervisor_cpu_ms_per_query: round(extra / qps, 3),
          ...(client.length ? { client_cpu_ms_per_query: round(median(client) / 2, 3) } : {}),
        },
      ];
    }),
  );
  const file = writeResult('state-ingest', {
    measured:
      `${INSTANCES} real instances (LauncherApp + osqueryd-sim); ingest = kolide_grpc logger plugin logString → SQLite buffer on the supervisor's connection; ` +
      `query loops: kolide_launcher_instances + kolide_launcher_log_buffers generate (state_*) or two pings (ping_thrift), ${PAUSE_MS} ms pause between loops; ` +
      '*_thrift from a child process over the vendor extension socket, state_direct in the supervisor process',
    instances: INSTANCES,
    runs: RUNS,
    line_bytes: LINE_BYTES,
    lines_per_run: LINES,
    durability: 'SQLite WAL, synchronous=NORMAL; commit before the plugin answers',
    load_avg_1m: { before: round(loadBefore, 2), after: round(loadavg()[0]!, 2) },
    ...summary,
    query_loops: loops,
    query_cost: { window_ms: COST_WINDOW_MS, reps: COST_REPS, idle_supervisor_cpu_ms_per_sec: round(idle, 1), ...queryCost },
  });
  console.log(JSON.stringify({ ...summary, query_loops: loops, query_cost: queryCost }, null, 2));
  console.log(`written to ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
