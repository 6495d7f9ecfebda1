/**
 * Soak (issue 9): a real supervisor (`bin/launcher run`) with 20 stand-in
 * osqueryds under steady distributed-query and log load for 15 minutes (the
 * test suite runs the same driver, bench/soak/driver.ts, for two). Writes
 * bench/results/soak.json: supervisor RSS every 5 s and the slope of its
 * linear fit after a warm-up, restarts (health-check false positives), logs
 * written vs delivered, queries sent vs answered, buffers after the load.
 *
 * Run: node dist/bench/soak.js [--minutes 15] [--instances 20]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { round, writeResult } from './lib.js';
import { assertBuilt } from './reliability/paths.js';
import { runSoak } from './soak/driver.js';

const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '15' }, instances: { type: 'string', default: '20' } },
  strict: true,
});
const minutes = Number(values.minutes);
const instances = Number(values.instances);
if (!(minutes > 0) || !Number.isInteger(instances) || instances < 1)
  throw new Error('--minutes must be > 0 and --instances a positive integer');
assertBuilt();

const durationMs = Math.round(minutes * 60_000);
// Warm-up: the first 2 minutes (or a fifth of a short run) are Node's heap settling, not a trend.
const warmupMs = Math.min(120_000, Math.round(durationMs / 5));
const load = {
  logs_per_second_per_instance: 4,
  queries_per_second: 4,
  schedule_interval_s: 2,
  publish_interval_s: 0.5,
  health_interval_s: 1,
};
const started = Date.now();
const r = await runSoak({
  instances,
  durationMs,
  sampleEveryMs: 5_000,
  warmupMs,
  logsPerSecond: load.logs_per_second_per_instance,
  queryEveryMs: 1000 / load.queries_per_second,
  scheduleIntervalS: load.schedule_interval_s,
  progress: (line) => console.log(line),
});
const { samples, ...figures } = r;
const file = writeResult('soak', {
  osqueryd: 'osqueryd-sim (Node)',
  minutes,
  load,
  wall_s: round((Date.now() - started) / 1000, 1),
  load_avg_1m_at_end: round(loadavg()[0]!, 2),
  ...figures,
  samples,
});
console.log(
  `rss ${r.rss_mb_start} → ${r.rss_mb_end} MB (max ${r.rss_mb_max}), slope after ${r.warmup_s} s: ${r.rss_slope_mb_per_min} MB/min; restarts ${r.restarts_total}; logs ${r.logs_delivered}/${r.logs_written}`,
);
console.log(`wrote ${file}`);
