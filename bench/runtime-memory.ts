/**
 * Supervisor memory (issue 4): resident set of the supervisor process alone
 * (osqueryd children are separate processes and not included) with 0, 1, 10
 * and 50 healthy instances. Each scenario runs in its own process
 * (`--child N`), waits for every instance to be healthy plus a 3 s settle,
 * runs a full GC and reports the median of 5 RSS samples 200 ms apart. The
 * children's total RSS is reported beside it for scale only.
 *
 * Run: node --expose-gc dist/bench/runtime-memory.js
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Runner } from '../src/runtime/runner.js';
import { median, round, writeResult } from './lib.js';
import { benchExtensionFactory } from './runtime-extension.js';

const COUNTS = [0, 1, 10, 50];
const here = dirname(fileURLToPath(import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const BIN = resolve(here, here.includes('/dist/') ? '../../bin/osqueryd-sim' : '../bin/osqueryd-sim');
const MB = 1024 * 1024;

function vmRssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

async function child(n: number): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'bm-'));
  const runner = new Runner({ root, osquerydPath: BIN, extensionFactory: benchExtensionFactory, limits: { cgroup: 'off' } });
  const execution = runner.execute();
  while (runner.socketDirectory === undefined) await sleep(5);
  try {
    for (let i = 0; i < n; i++) await runner.add({ id: `m-${i}` });
    const deadline = Date.now() + 300_000;
    while (!runner.status().every((s) => s.healthy)) {
      if (Date.now() > deadline) throw new Error('instances not healthy in 300 s');
      await sleep(50);
    }
    await sleep(3_000);
    const samples: number[] = [];
    const heap: number[] = [];
    for (let i = 0; i < 5; i++) {
      (globalThis as { gc?: () => void }).gc?.();
      const m = process.memoryUsage();
      samples.push(m.rss / MB);
      heap.push(m.heapUsed / MB);
      await sleep(200);
    }
    const childrenRss = runner.status().reduce((sum, s) => sum + (s.pid ? vmRssMb(s.pid) : 0), 0);
    process.stdout.write(`${JSON.stringify({ instances: n, supervisor_rss_mb: round(median(samples), 1), supervisor_heap_used_mb: round(median(heap), 1), children_rss_mb_total: round(childrenRss, 1) })}\n`);
  } finally {
    await runner.interrupt();
    await execution;
    rmSync(root, { recursive: true, force: true });
  }
}

const at = process.argv.indexOf('--child');
if (at !== -1) {
  await child(Number(process.argv[at + 1]));
} else {
  const rows: Array<Record<string, number>> = [];
  for (const n of COUNTS) {
    const r = spawnSync(process.execPath, ['--expose-gc', SELF, '--child', String(n)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 });
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    if (!line) throw new Error(`scenario ${n} failed (exit ${r.status}): ${r.stdout}`);
    rows.push(JSON.parse(line) as Record<string, number>);
    console.log(line);
  }
  const base = rows[0]!.supervisor_rss_mb!;
  const perInstance = rows.filter((r) => r.instances! > 0).map((r) => ({ instances: r.instances, rss_per_instance_mb: round((r.supervisor_rss_mb! - base) / r.instances!, 2) }));
  const file = writeResult('runtime-memory', { osqueryd: 'osqueryd-sim (Node)', load_avg_1m: round(loadavg()[0]!, 2), scenarios: rows, marginal_rss_over_empty: perInstance });
  console.log(`wrote ${file}`);
}
