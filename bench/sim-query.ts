/**
 * What the stand-in's authorizer engine costs (issue 13, adr/0008): the
 * SQLite WASM build with sqlite3_set_authorizer instead of better-sqlite3.
 * Per stand-in process: spawn → `osquery_info` answered, then the median
 * latency of 30 Thrift `query` calls for each query below, and the resident
 * set afterwards. With `SIM_BASELINE_BIN=<path to an older bin/osqueryd-sim>`
 * the baseline and the current build are measured alternately (A B A B, 4
 * rounds each) and ratios reported, since this machine is shared and noisy.
 *
 * Run: node dist/bench/sim-query.js   (or SIM_BASELINE_BIN=... node dist/bench/sim-query.js)
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ExtensionManagerClient } from '../src/osquery/client.js';
import { median, round, writeResult } from './lib.js';

const ROUNDS = 4;
const CALLS = 30;
const here = dirname(fileURLToPath(import.meta.url));
const CURRENT = resolve(here, here.includes('/dist/') ? '../../bin/osqueryd-sim' : '../bin/osqueryd-sim');
const BASELINE = process.env.SIM_BASELINE_BIN;

const QUERIES = {
  osquery_info: 'select * from osquery_info',
  processes_all_rows: 'select * from processes',
  recursive_cte_20k:
    'with recursive c(x) as (select 1 union all select x + 1 from c where x < 20000) select count(*) as n, sum(x) as s from c',
} as const;
type QueryName = keyof typeof QUERIES;

interface Sample {
  startupMs: number;
  queryMs: Record<QueryName, number>;
  rssMb: number;
}

async function measure(bin: string): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), 'bq-'));
  const socket = join(dir, 'o.em');
  const t = performance.now();
  const child = spawn(
    process.execPath,
    [
      bin,
      `--extensions_socket=${socket}`,
      `--pidfile=${join(dir, 'pid')}`,
      `--database_path=${join(dir, 'db')}`,
      `--logger_path=${join(dir, 'logs')}`,
      `--config_path=${join(dir, 'none.conf')}`,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise((r) => child.once('exit', r));
  const client = new ExtensionManagerClient(socket, { timeoutMs: 10_000 });
  try {
    for (;;) {
      if (performance.now() - t > 20_000) throw new Error(`${bin}: no answer within 20 s`);
      if (existsSync(socket)) {
        const ok = await client.query('select pid from osquery_info').then(
          (rows) => rows[0]?.pid === String(child.pid),
          () => false,
        );
        if (ok) break;
      }
      await sleep(1);
    }
    const startupMs = performance.now() - t;
    const queryMs = {} as Record<QueryName, number>;
    for (const [name, sql] of Object.entries(QUERIES) as Array<[QueryName, string]>) {
      const times: number[] = [];
      for (let i = 0; i < CALLS; i++) {
        const q = performance.now();
        const rows = await client.query(sql);
        times.push(performance.now() - q);
        if (rows.length === 0) throw new Error(`${bin}: ${name} returned no rows`);
      }
      queryMs[name] = median(times);
    }
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    return { startupMs, queryMs, rssMb: rss ? Number(rss[1]) / 1024 : NaN };
  } finally {
    client.close();
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

function summarize(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {
    spawn_to_answer_ms: round(median(samples.map((s) => s.startupMs)), 1),
    rss_mb: round(median(samples.map((s) => s.rssMb)), 1),
  };
  for (const name of Object.keys(QUERIES) as QueryName[]) out[`${name}_ms`] = round(median(samples.map((s) => s.queryMs[name])), 2);
  return out;
}

const current: Sample[] = [];
const baseline: Sample[] = [];
for (let i = 0; i < ROUNDS; i++) {
  if (BASELINE) baseline.push(await measure(BASELINE));
  current.push(await measure(CURRENT));
}
const cur = summarize(current);
const data: Record<string, unknown> = { rounds: ROUNDS, calls_per_query: CALLS, queries: QUERIES, current: cur };
if (BASELINE) {
  const base = summarize(baseline);
  data.baseline = { ...base, note: 'better-sqlite3 engine (before issue 13), same machine, measured alternately' };
  data.ratio_current_over_baseline = Object.fromEntries(Object.keys(cur).map((k) => [k, round(cur[k]! / base[k]!, 2)]));
}
const file = writeResult('sim-query', data);
console.log(`sim-query: ${JSON.stringify(data.ratio_current_over_baseline ?? cur)}; written to ${file}`);
