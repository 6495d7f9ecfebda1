/**
 * Supervisor memory and publish attempts during a device-server outage,
 * this code against an older build (issue 19), alternated in one run
 * (old new old new ...). Each round: a real `bin/launcher run` with 4
 * registrations (osqueryd stand-ins), publish interval 0.1 s (compressed
 * time: 150 s of outage is 1500 intervals, 25 hours at the default 60 s),
 * 1 KiB logs injected at 50/s per registration through the logger plugin,
 * the default 3 MiB batch. Warm-up with the server answering, then the
 * server "down" (connections dropped) for the outage, then back; RSS of the
 * supervisor process from /proc every second; publish attempts as the
 * device server counted them; then the time until every log was delivered.
 *
 * Run: node dist/bench/store-outage.js --old <dir of the older build> [--seconds 150] [--rounds 2] [--fault down]
 * Writes bench/results/store-outage.json and its section of bench/results/reliability.md.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { FaultMode } from '../src/devserver/index.js';
import { LauncherProcess } from './reliability/launcher-process.js';
import { DeliveryTracker, InjectionLoop, LogInjector } from './reliability/log-traffic.js';
import { rssMb } from './reliability/procfs.js';
import { Stage } from './reliability/stage.js';
import { pause, waitFor } from './reliability/wait.js';
import { machine, median, resultsDir, writeResult } from './lib.js';
import { LAUNCHER_BIN } from './reliability/paths.js';

const { values } = parseArgs({
  options: {
    old: { type: 'string' },
    seconds: { type: 'string', default: '150' },
    rounds: { type: 'string', default: '2' },
    fault: { type: 'string', default: 'down' },
  },
});
if (!values.old) {
  // bench/run runs every bench without arguments: this one needs an older build to compare with.
  process.stdout.write('store-outage: skipped (pass --old <dir of an older build>, e.g. `git archive 51d9dc6 | tar -x -C dir` + build)\n');
  process.exit(0);
}
if (!existsSync(join(values.old, 'bin/launcher')))
  throw new Error(`--old ${values.old}: no bin/launcher there (an older build with dist/ is needed)`);
const OUTAGE_MS = Number(values.seconds) * 1000;
const ROUNDS = Number(values.rounds);
const FAULT = values.fault as FaultMode;
const IDS = ['kolide', 'acme', 'globex', 'initech'];

interface Round {
  variant: 'old' | 'new';
  rss_before_mb: number;
  rss_outage_first_10s_mb: number;
  rss_outage_max_mb: number;
  rss_outage_end_mb: number;
  rss_after_drain_mb: number;
  publish_attempts: number;
  attempts_per_registration_per_minute: number;
  logs_injected: number;
  drain_ms: number;
  lost: number;
}

const r1 = (n: number): number => Math.round(n * 10) / 10;

async function round(variant: 'old' | 'new'): Promise<Round> {
  const stage = await Stage.create({ prefix: 'bo', registrations: IDS });
  const sup = LauncherProcess.start({
    ...stage.launcherOptions(),
    config: { log_buffer: { publish_interval_seconds: 0.1 } },
    launcherBin: variant === 'old' ? join(values.old!, 'bin/launcher') : LAUNCHER_BIN,
  });
  const injector = new LogInjector('bo', 1_000);
  const load = new InjectionLoop({ injector, resolve: stage.socketResolver(() => sup.client), perTick: 5, tickMs: 100 });
  try {
    await sup.waitHealthy(IDS);
    const tracker = new DeliveryTracker(stage.dev);
    load.start();
    await waitFor('warm-up delivered', () => injector.total > 400 && tracker.missing(injector.written).length < injector.total / 2, {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    const before: number[] = [];
    for (let i = 0; i < 5; i++) {
      before.push(rssMb(sup.pid) ?? NaN);
      await pause(400);
    }
    const calls0 = stage.dev.stats().calls.PublishLogs;
    const written0 = injector.total;
    stage.dev.setFault({ mode: FAULT, methods: ['PublishLogs'] });
    const began = Date.now();
    const during: Array<{ t: number; mb: number }> = [];
    while (Date.now() - began < OUTAGE_MS) {
      during.push({ t: Date.now() - began, mb: rssMb(sup.pid) ?? NaN });
      await pause(1_000);
    }
    const outageMs = Date.now() - began;
    const attempts = stage.dev.stats().calls.PublishLogs - calls0;
    stage.dev.setFault(undefined);
    await load.stop();
    const drainStart = Date.now();
    await waitFor('every log delivered', () => tracker.missing(injector.written).length === 0, { timeoutMs: 300_000, intervalMs: 500 });
    const drainMs = Date.now() - drainStart;
    await pause(3_000);
    const after: number[] = [];
    for (let i = 0; i < 5; i++) {
      after.push(rssMb(sup.pid) ?? NaN);
      await pause(400);
    }
    return {
      variant,
      rss_before_mb: r1(median(before)),
      rss_outage_first_10s_mb: r1(median(during.filter((d) => d.t < 10_000).map((d) => d.mb))),
      rss_outage_max_mb: r1(Math.max(...during.map((d) => d.mb))),
      rss_outage_end_mb: r1(median(during.slice(-5).map((d) => d.mb))),
      rss_after_drain_mb: r1(median(after)),
      publish_attempts: attempts,
      attempts_per_registration_per_minute: r1((attempts / IDS.length) * (60_000 / outageMs)),
      logs_injected: injector.total - written0,
      drain_ms: drainMs,
      lost: tracker.missing(injector.written).length,
    };
  } finally {
    await load.stop();
    injector.close();
    await sup.stop();
    await stage.cleanup();
  }
}

const rounds: Round[] = [];
for (let i = 0; i < ROUNDS; i++) {
  for (const v of ['old', 'new'] as const) {
    const r = await round(v);
    process.stdout.write(`${JSON.stringify(r)}\n`);
    rounds.push(r);
  }
}

const med = (v: 'old' | 'new', k: keyof Round): number => r1(median(rounds.filter((r) => r.variant === v).map((r) => r[k] as number)));
const KEYS: Array<[keyof Round, string]> = [
  ['rss_before_mb', 'RSS before the outage (MB)'],
  ['rss_outage_first_10s_mb', 'RSS, first 10 s of the outage (MB)'],
  ['rss_outage_max_mb', 'RSS, peak during the outage (MB)'],
  ['rss_outage_end_mb', 'RSS, last 5 s of the outage (MB)'],
  ['rss_after_drain_mb', 'RSS after the backlog drained (MB)'],
  [
    'publish_attempts',
    'PublishLogs HTTP requests during the outage, 4 registrations (the device client tries each failed publish 3 times with 0.25–1 s waits, which already slowed the old loop)',
  ],
  ['attempts_per_registration_per_minute', 'HTTP requests per registration per minute'],
  ['drain_ms', 'time to deliver the backlog after the outage (ms)'],
  ['lost', 'logs lost'],
];
const summary = Object.fromEntries(KEYS.map(([k]) => [k, { old: med('old', k), new: med('new', k) }]));
const at = new Date().toISOString();
writeResult('store-outage', {
  at,
  machine: machine(),
  outage_seconds: OUTAGE_MS / 1000,
  fault: FAULT,
  registrations: IDS.length,
  rounds,
  median: summary,
});

const section = [
  '<!-- store-outage:start (written by bench/store-outage.ts) -->',
  '## Device server outage: supervisor memory and publish attempts, before and after issue 19',
  '',
  `Written by \`bench/store-outage.ts\` on ${at}: a real \`bin/launcher run\`, ${IDS.length} registrations, publish interval 0.1 s,`,
  `1 KiB logs at 50/s per registration, default 3 MiB batch; device server \`${FAULT}\` for ${OUTAGE_MS / 1000} s (compressed time: that`,
  `many publish intervals are ${Math.round(OUTAGE_MS / 100 / 60)} hours at the default 60 s). "old" is main at 51d9dc6 (before issue 19), "new"`,
  `this branch; ${ROUNDS} rounds alternated (old new old new), medians. Load average at the end: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(', ')}.`,
  '',
  '| figure | old (51d9dc6) | new |',
  '| --- | --- | --- |',
  ...KEYS.map(([k, label]) => `| ${label} | ${summary[k]!.old} | ${summary[k]!.new} |`),
  '',
  `Per round: ${rounds.map((r) => `${r.variant} ${r.rss_before_mb} → peak ${r.rss_outage_max_mb} MB, ${r.publish_attempts} attempts`).join('; ')}.`,
  '',
  '### New fault rows (issue 19; tests with real files and processes)',
  '',
  '| fault | injected | survived | test |',
  '| --- | --- | --- | --- |',
  '| supervisor database corrupt at start | pages 2–5 of `launcher.sqlite` overwritten while stopped | moved aside (`launcher.sqlite.corrupt-<time>`, kept), newest backup that passes quick_check restored, error record in the supervisor log and a `store_incidents` row; all registrations healthy | test/faults/store-abuse.test.ts, test/store/integrity.test.ts |',
  '| corrupt database, no backup | same, `store.backup_interval_hours: 0` | fresh store, logged at error level ("STARTING WITH A FRESH STORE"), config registrations enroll again | test/faults/store-abuse.test.ts |',
  '| corrupt newest backup | newest backup overwritten too | skipped (reported), the older sound backup restored | test/store/integrity.test.ts |',
  '| logs past the total byte cap | 40 MiB into a 4 MiB `log_buffer.max_total_bytes`, 2 noisy + 1 quiet registration | quiet registration kept every log; the noisy ones lost their oldest (counted each); database + WAL stay < 4× the cap; space given back after draining | test/store/total-cap.test.ts |',
  `| device server failing (${FAULT}, garbage) | compressed outage | publish attempts back off, wait doubling to 32 intervals (jitter 50–100%), reset on success; order per registration kept | test/faults/store-abuse.test.ts, test/extension/publish-abuse.test.ts |`,
  '| slow device server | PublishLogs answered after 600 ms (threshold 300 ms) | batch limit 2 → 1.5 → 1 MiB, then back to 2 MiB after quick full batches; every log in order | test/extension/publish-abuse.test.ts |',
  '| server refuses large batches (HTTP 413) | body limit 1.3 MiB, batch 2 MiB | limit steps down to 1 MiB and does not grow back into a refused size; nothing lost | test/extension/publish-abuse.test.ts |',
  '| many registrations publishing at once | 3 registrations, slow server | at most `PublishGate` limit (2 by default) batches built or sent at once | test/extension/publish-abuse.test.ts |',
  '<!-- store-outage:end -->',
].join('\n');
const mdPath = join(resultsDir(), 'reliability.md');
const md = existsSync(mdPath) ? readFileSync(mdPath, 'utf8') : '';
const re = /<!-- store-outage:start[\s\S]*?<!-- store-outage:end -->/;
writeFileSync(mdPath, re.test(md) ? md.replace(re, section) : `${md.trimEnd()}\n\n${section}\n`);
process.stdout.write(`${section}\n`);
