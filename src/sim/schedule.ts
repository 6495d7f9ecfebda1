/**
 * The scheduler: runs the config's scheduled and pack queries one at a time
 * at their (splayed) intervals, diffs each result against the previous one
 * kept in the database, and hands result lines to the logger plugins
 * (docs/protocol/osquery-extensions.md#result-logs).
 *
 * Deviation from osqueryd, on purpose: osqueryd runs a query when the unix
 * time is a multiple of its interval, so an hourly query first runs up to an
 * hour after start. The stand-in runs each query it has not run yet within
 * about a second of seeing it, then every interval, so tests need not wait.
 */
import { performance } from 'node:perf_hooks';
import type { ConfigManager } from './config.js';
import type { Decorations } from './decorators.js';
import type { FaultController } from './faults.js';
import type { FlagValues } from './flags.js';
import { glog } from './glog.js';
import { calendarTime, unixSeconds } from './host.js';
import type { LoggerRouter } from './logger.js';
import type { ScheduledQuery } from './packs.js';
import { batchLine, diffRows, eventLines, snapshotLines, type ResultMeta } from './results.js';
import type { SqlEngine } from './sql/engine.js';
import type { SimStore } from './store.js';

const TICK_MS = 250;
const FIRST_RUN_DELAY_MS = 200;

interface Stats {
  executions: number;
  lastExecuted: number;
  outputSize: number;
  wallMs: number;
  lastWallMs: number;
  userMs: number;
  lastUserMs: number;
  systemMs: number;
  lastSystemMs: number;
  lastMemory: number;
  memoryTotal: number;
}

export interface SchedulerDeps {
  config: ConfigManager;
  engine: SqlEngine;
  store: SimStore;
  logger: LoggerRouter;
  decorations: Decorations;
  flags: FlagValues;
  faults: FaultController;
  hostIdentifier: () => string;
}

export class Scheduler {
  private readonly deps: SchedulerDeps;
  private readonly nextRun = new Map<string, number>();
  private readonly stats = new Map<string, Stats>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(deps: SchedulerDeps) {
    this.deps = deps;
  }

  start(): void {
    this.schedule(FIRST_RUN_DELAY_MS);
  }

  /** Stop scheduling; a run in progress is abandoned, not awaited (shutdown must not wait on a slow extension). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Rows for osquery_schedule. */
  rows(): Array<Record<string, string | number>> {
    return this.deps.config.queries.map((q) => {
      const s = this.stats.get(q.name);
      return {
        name: q.name,
        query: q.query,
        interval: q.interval,
        executions: s?.executions ?? 0,
        last_executed: s?.lastExecuted ?? 0,
        denylisted: 0,
        output_size: s?.outputSize ?? 0,
        wall_time: Math.floor((s?.wallMs ?? 0) / 1000),
        wall_time_ms: s?.wallMs ?? 0,
        last_wall_time_ms: s?.lastWallMs ?? 0,
        user_time: s?.userMs ?? 0,
        last_user_time: s?.lastUserMs ?? 0,
        system_time: s?.systemMs ?? 0,
        last_system_time: s?.lastSystemMs ?? 0,
        average_memory: s && s.executions > 0 ? Math.round(s.memoryTotal / s.executions) : 0,
        last_memory: s?.lastMemory ?? 0,
      };
    });
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.tick()
        .catch((err: unknown) => glog.error('scheduler.cpp', 110, `Scheduler tick failed: ${String(err)}`))
        .finally(() => this.schedule(TICK_MS));
    }, ms);
  }

  private async tick(): Promise<void> {
    if (this.deps.faults.hung) return;
    const queries = this.deps.config.queries;
    const names = new Set(queries.map((q) => q.name));
    for (const name of this.nextRun.keys()) if (!names.has(name)) this.nextRun.delete(name);
    for (const q of queries) {
      if (this.stopped || this.deps.faults.hung) return;
      const due = this.nextRun.get(q.name) ?? Date.now();
      if (due > Date.now()) continue;
      this.nextRun.set(q.name, Math.max(due + q.interval * 1000, Date.now()));
      await this.run(q);
    }
  }

  private async run(q: ScheduledQuery): Promise<void> {
    const { engine, flags, store, logger } = this.deps;
    // osqueryd: INFO with --schedule_lognames, else VLOG(1) (only with --verbose); docs/protocol/osquery-extensions.md#status-logs.
    const started = `Executing scheduled query ${q.name}: ${q.query}`;
    if (flags.bool('schedule_lognames')) glog.info('scheduler.cpp', 97, started);
    else glog.vlog('scheduler.cpp', 99, started);
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const res = await engine.query(q.query, 'schedule', q.name);
    this.record(q.name, performance.now() - t0, process.cpuUsage(cpu), res.ok ? JSON.stringify(res.rows).length : 0);
    if (!res.ok) {
      glog.error('scheduler.cpp', 129, `Error executing scheduled query ${q.name}: ${res.message}`);
      return;
    }
    const now = new Date();
    const epoch = flags.num('schedule_epoch');
    const meta: ResultMeta = {
      name: q.name,
      hostIdentifier: this.deps.hostIdentifier(),
      calendarTime: calendarTime(now),
      unixTime: unixSeconds(now),
      epoch,
      counter: 0,
      numerics: flags.bool('logger_numerics'),
      decorations: {},
      decorationsTopLevel: flags.bool('decorations_top_level'),
      columns: res.columns,
    };
    if (q.snapshot) {
      if (!logger.active) return;
      meta.decorations = await this.deps.decorations.current();
      for (const line of snapshotLines(meta, res.rows, flags.bool('logger_snapshot_event_type'))) await logger.logResult(line, 'snapshot');
      return;
    }
    const prev = store.results(q.name);
    const fresh = !prev || prev.epoch !== epoch || prev.query !== q.query;
    meta.counter = fresh ? 0 : prev.counter + 1;
    const diff = fresh ? { added: res.rows, removed: [] } : diffRows(prev.rows, res.rows);
    if (!q.removed) diff.removed = [];
    store.saveResults(q.name, { query: q.query, epoch, counter: meta.counter, rows: res.rows });
    if (!logger.active) return;
    const changed = diff.added.length > 0 || diff.removed.length > 0;
    if (!changed && meta.counter !== 0) return;
    meta.decorations = await this.deps.decorations.current();
    if (flags.bool('logger_event_type')) {
      for (const line of eventLines(meta, diff)) await logger.logResult(line, 'string');
    } else {
      await logger.logResult(batchLine(meta, diff), 'string');
    }
  }

  private record(name: string, wallMs: number, cpu: NodeJS.CpuUsage, outputSize: number): void {
    const s = this.stats.get(name) ?? {
      executions: 0,
      lastExecuted: 0,
      outputSize: 0,
      wallMs: 0,
      lastWallMs: 0,
      userMs: 0,
      lastUserMs: 0,
      systemMs: 0,
      lastSystemMs: 0,
      lastMemory: 0,
      memoryTotal: 0,
    };
    const rss = process.memoryUsage.rss();
    s.executions++;
    s.lastExecuted = unixSeconds();
    s.outputSize += outputSize;
    s.lastWallMs = Math.round(wallMs);
    s.wallMs += s.lastWallMs;
    s.lastUserMs = Math.round(cpu.user / 1000);
    s.userMs += s.lastUserMs;
    s.lastSystemMs = Math.round(cpu.system / 1000);
    s.systemMs += s.lastSystemMs;
    s.lastMemory = rss;
    s.memoryTotal += rss;
    this.stats.set(name, s);
  }
}
