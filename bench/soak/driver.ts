/**
 * Load/soak of a real supervisor (`bin/launcher run`) with N instances under
 * steady distributed-query and log load, shared by test/soak (about two
 * minutes) and bench/soak.ts (15 minutes by default).
 *
 * Load: every instance's stand-in runs a snapshot query on a schedule, a
 * distributed query is queued for the next tenant (round-robin) at a fixed
 * period, and logs are injected into every instance's logger plugin at a
 * known rate (bench/reliability/log-traffic.ts). Every `sampleEveryMs` the
 * supervisor's RSS and CPU time, and every instance's restarts, health and
 * buffered logs are sampled. After the load stops the buffers must drain and
 * every injected log and queued query must have reached the device server.
 *
 * The memory slope is a least-squares line through the RSS samples after
 * warm-up, in MB per minute.
 */
import { median, linearFit, round } from '../reliability/figures.js';
import { LauncherProcess } from '../reliability/launcher-process.js';
import { DeliveryTracker, InjectionLoop, LogInjector } from '../reliability/log-traffic.js';
import { cpuSeconds, rssMb } from '../reliability/procfs.js';
import { Stage } from '../reliability/stage.js';
import { pause, waitFor } from '../reliability/wait.js';

export interface SoakOptions {
  instances: number;
  durationMs: number;
  /** RSS/status sample period. */
  sampleEveryMs: number;
  /** Samples before this (from load start) are excluded from the slope. */
  warmupMs: number;
  /** Injected result logs per instance per second. */
  logsPerSecond: number;
  /** One distributed query is queued (for the next tenant in turn) every this many ms. */
  queryEveryMs: number;
  /** Interval of each stand-in's scheduled snapshot query (s). */
  scheduleIntervalS: number;
  /** Progress lines (default: none). */
  progress?: (line: string) => void;
}

export interface SoakSample {
  t_s: number;
  rss_mb: number;
  cpu_s: number;
  buffered: number;
  restarts: number;
  unhealthy: number;
}

export interface SoakResult {
  instances: number;
  duration_s: number;
  startup_s: number;
  samples: SoakSample[];
  rss_mb_start: number;
  rss_mb_end: number;
  rss_mb_max: number;
  /** Slope of RSS after warm-up (MB/min). */
  rss_slope_mb_per_min: number;
  warmup_s: number;
  supervisor_cpu_percent: number;
  restarts_total: number;
  restarts_by_instance: Record<string, number>;
  /** Samples in which some instance was not healthy (a health-check blip). */
  unhealthy_observations: number;
  logs_written: number;
  logs_delivered: number;
  logs_lost: number;
  duplicates_delivered: number;
  logs_refused: number;
  scheduled_logs_delivered: number;
  queries_sent: number;
  queries_answered: number;
  buffered_peak: number;
  buffered_after_drain: number;
  drain_s: number;
  error_records: number;
  /** The first error records, verbatim (for a failure message; not a figure). */
  error_lines: string[];
  supervisor_exit_code: number | null;
  leaked_osqueryds: number[];
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const say = o.progress ?? (() => undefined);
  const ids = Array.from({ length: o.instances }, (_, i) => `soak-${String(i).padStart(2, '0')}`);
  const stage = await Stage.create({
    prefix: 'sk',
    registrations: ids,
    tenantConfig: () => ({
      schedule: { soak_clock: { query: 'select unix_time from time', interval: o.scheduleIntervalS, snapshot: true } },
    }),
    osqueryFlags: () => ['--distributed_interval=1'],
  });
  let sup: LauncherProcess | undefined;
  const injector = new LogInjector('soak');
  let load: InjectionLoop | undefined;
  try {
    const t0 = Date.now();
    sup = LauncherProcess.start({
      ...stage.launcherOptions(),
      config: { log_buffer: { publish_interval_seconds: 0.5 }, health: { interval_seconds: 1, startup_delay_seconds: 1, failures: 3 } },
    });
    const s = sup;
    await s.waitHealthy(ids, 180_000);
    const startup = (Date.now() - t0) / 1000;
    say(`${ids.length} instances healthy after ${round(startup, 1)} s`);
    const tracker = new DeliveryTracker(stage.dev);

    // Load.
    const tickMs = 500;
    load = new InjectionLoop({
      injector,
      resolve: stage.socketResolver(() => s.client),
      perTick: Math.max(1, Math.round((o.logsPerSecond * tickMs) / 1000)),
      tickMs,
    });
    load.start();
    const queries: Array<{ tenant: string; name: string }> = [];
    let stopQueries = false;
    const queryLoop = (async () => {
      for (let i = 0; !stopQueries; i++) {
        const tenant = ids[i % ids.length]!;
        queries.push({ tenant, name: stage.dev.addQuery(tenant, `select ${i} as soak_query`) });
        await pause(o.queryEveryMs);
      }
    })();

    // Samples.
    const samples: SoakSample[] = [];
    const loadStart = Date.now();
    const cpu0 = cpuSeconds(s.pid) ?? 0;
    let bufferedPeak = 0;
    const sample = async () => {
      const all = await s.client.listInstances();
      const buffered = all.reduce((n, i) => n + i.buffers.result_count + i.buffers.status_count, 0);
      bufferedPeak = Math.max(bufferedPeak, buffered);
      samples.push({
        t_s: round((Date.now() - loadStart) / 1000, 1),
        rss_mb: round(rssMb(s.pid) ?? NaN),
        cpu_s: round((cpuSeconds(s.pid) ?? 0) - cpu0),
        buffered,
        restarts: all.reduce((n, i) => n + i.restarts, 0),
        unhealthy: all.filter((i) => !i.healthy).length,
      });
      tracker.poll();
    };
    while (Date.now() - loadStart < o.durationMs) {
      if (!s.running) throw new Error(`supervisor exited during the soak\n${s.tail(40)}`);
      await sample();
      const last = samples.at(-1)!;
      if (samples.length % 10 === 1)
        say(`t=${last.t_s}s rss=${last.rss_mb}MB buffered=${last.buffered} restarts=${last.restarts} written=${injector.total}`);
      await pause(o.sampleEveryMs);
    }
    const cpuUsed = (cpuSeconds(s.pid) ?? 0) - cpu0;
    const loadSeconds = (Date.now() - loadStart) / 1000;

    // Stop the load; everything must drain.
    stopQueries = true;
    await queryLoop;
    await load.stop();
    const drainStart = Date.now();
    await waitFor('every injected log delivered', () => tracker.missing(injector.written).length === 0, {
      timeoutMs: 180_000,
      intervalMs: 500,
      explain: () => `${tracker.missing(injector.written).length} of ${injector.total} missing\n${s.tail(20)}`,
    });
    const answered = () => queries.filter((q) => stage.dev.results({ tenant: q.tenant, queryName: q.name }).length > 0).length;
    await waitFor('every queued query answered', () => answered() === queries.length, {
      timeoutMs: 120_000,
      intervalMs: 500,
      explain: () => `${queries.length - answered()} of ${queries.length} unanswered`,
    });
    // Only the schedules keep running: at most a few of their logs wait per instance.
    const drained = await waitFor(
      'buffers drained',
      async () => {
        const all = await s.client.listInstances();
        const n = all.reduce((sum, i) => sum + i.buffers.result_count + i.buffers.status_count, 0);
        return n <= 2 * ids.length ? { n } : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const drainS = (Date.now() - drainStart) / 1000;
    await sample();
    const final = await s.client.listInstances();
    const restartsBy = Object.fromEntries(final.map((i) => [i.id, i.restarts]));
    const lost = tracker.missing(injector.written).length;
    const queriesAnswered = answered();

    const end = await s.stop();
    const leaked = await stage.cleanup().catch(() => [] as number[]);
    const after = samples.filter((x) => x.t_s * 1000 >= o.warmupMs);
    const fit = linearFit(
      after.map((x) => x.t_s / 60),
      after.map((x) => x.rss_mb),
    );
    const head = samples.slice(0, 3).map((x) => x.rss_mb);
    const tail = samples.slice(-3).map((x) => x.rss_mb);
    return {
      instances: ids.length,
      duration_s: round(loadSeconds, 1),
      startup_s: round(startup, 1),
      samples,
      rss_mb_start: round(median(head)),
      rss_mb_end: round(median(tail)),
      rss_mb_max: round(Math.max(...samples.map((x) => x.rss_mb))),
      rss_slope_mb_per_min: round(fit.slope, 3),
      warmup_s: o.warmupMs / 1000,
      supervisor_cpu_percent: round((100 * cpuUsed) / loadSeconds, 1),
      restarts_total: final.reduce((n, i) => n + i.restarts, 0),
      restarts_by_instance: restartsBy,
      unhealthy_observations: samples.filter((x) => x.unhealthy > 0).length,
      logs_written: injector.total,
      logs_delivered: tracker.total,
      logs_lost: lost,
      duplicates_delivered: tracker.duplicates,
      logs_refused: injector.refused,
      scheduled_logs_delivered: [...tracker.scheduled.values()].reduce((a, b) => a + b, 0),
      queries_sent: queries.length,
      queries_answered: queriesAnswered,
      buffered_peak: bufferedPeak,
      buffered_after_drain: drained.n,
      drain_s: round(drainS, 1),
      error_records: s.errorRecords,
      error_lines: [...s.errorLines],
      supervisor_exit_code: end.code,
      leaked_osqueryds: leaked,
    };
  } finally {
    await load?.stop();
    injector.close();
    if (sup?.running) {
      say(sup.tail(40));
      await sup.stop();
    }
    await stage.cleanup().catch(() => undefined);
  }
}
