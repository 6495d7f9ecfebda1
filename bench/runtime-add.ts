/**
 * Runtime add latency (issue 4): time from Runner.add() until the new
 * registration's instance is healthy (osqueryd-sim spawned, socket up,
 * extension registered and listed), p50/p95 over 20 adds, in two scenarios:
 *
 * - `isolated`: each registration is removed before the next is added (one
 *   osqueryd at a time);
 * - `cumulative`: registrations are kept, so the 20th add happens next to 19
 *   running instances (the live-add case the runtime exists for).
 *
 * `launch_ms` is the instance's own started→connected time (status
 * `connected_at - started_at`); the rest of `add_to_healthy_ms` is the store
 * write, the supervision loop picking it up and the poll granularity (2 ms).
 * osqueryd-sim is a Node process, so its start-up dominates; launcher measured
 * real osqueryd at ~1 s mean, p95 ~2 s (docs/protocol/device.md#timings).
 *
 * Run: node dist/bench/runtime-add.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Runner } from '../src/runtime/runner.js';
import { median, percentile, round, writeResult } from './lib.js';
import { benchExtensionFactory } from './runtime-extension.js';
import { parseRegistrationId as rid } from '../src/registration.js';

const ADDS = 20;
const here = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(here, here.includes('/dist/') ? '../../bin/osqueryd-sim' : '../bin/osqueryd-sim');

async function healthy(runner: Runner, id: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!runner.statusOf(rid(id)).healthy) {
    if (Date.now() > deadline) throw new Error(`${id} not healthy after ${timeoutMs} ms: ${JSON.stringify(runner.statusOf(rid(id)))}`);
    await sleep(2);
  }
}

function summary(values: number[]) {
  return {
    n: values.length,
    p50: round(percentile(values, 50), 1),
    p95: round(percentile(values, 95), 1),
    min: round(Math.min(...values), 1),
    max: round(Math.max(...values), 1),
    median: round(median(values), 1),
  };
}

async function scenario(keep: boolean): Promise<{ add_to_healthy_ms: ReturnType<typeof summary>; launch_ms: ReturnType<typeof summary> }> {
  const root = mkdtempSync(join(tmpdir(), 'ba-'));
  const runner = new Runner({ root, osquerydPath: BIN, extensionFactory: benchExtensionFactory, limits: { cgroup: 'off' } });
  const execution = runner.execute();
  while (runner.socketDirectory === undefined) await sleep(5);
  const total: number[] = [];
  const launch: number[] = [];
  try {
    // One discarded add warms the disk cache and JIT for the stand-in.
    await runner.add({ id: 'warmup' });
    await healthy(runner, 'warmup');
    await runner.remove(rid('warmup'));
    for (let i = 0; i < ADDS; i++) {
      const id = `bench-${i}`;
      const t = performance.now();
      await runner.add({ id });
      await healthy(runner, id);
      total.push(performance.now() - t);
      const st = runner.statusOf(rid(id));
      launch.push(st.connected_at! - st.started_at!);
      if (!keep) await runner.remove(rid(id));
    }
  } finally {
    await runner.interrupt();
    await execution;
    rmSync(root, { recursive: true, force: true });
  }
  return { add_to_healthy_ms: summary(total), launch_ms: summary(launch) };
}

const loadBefore = loadavg()[0]!;
const isolated = await scenario(false);
const cumulative = await scenario(true);
// Other work on the machine skews these figures; the load average says how much.
const load_avg_1m = { before: round(loadBefore, 2), after: round(loadavg()[0]!, 2) };
const file = writeResult('runtime-add', { adds: ADDS, osqueryd: 'osqueryd-sim (Node)', load_avg_1m, isolated, cumulative });
console.log(JSON.stringify({ isolated, cumulative }, null, 2));
console.log(`wrote ${file}`);
