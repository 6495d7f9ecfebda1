/**
 * Distributed queries (docs/protocol/osquery-extensions.md#distributed-plugins): getQueries →
 * run (honouring `discovery`) → writeResults → sleep --distributed_interval
 * seconds, or 5 s while an `accelerate` window lasts. Results the plugin
 * refuses (non-zero code) are kept and sent again with the next batch.
 *
 * A query that was executing when the process died is denylisted for
 * --distributed_denylist_duration seconds (osqueryd's crash protection): it is
 * then answered with status 1 "distributed query is denylisted".
 */
import { performance } from 'node:perf_hooks';
import type { FaultController } from './faults.js';
import type { FlagValues } from './flags.js';
import { glog } from './glog.js';
import { unixSeconds } from './host.js';
import type { Registry } from './registry.js';
import type { Row, SqlEngine } from './sql/engine.js';
import type { SimStore } from './store.js';

const ACCELERATED_INTERVAL_MS = 5_000;

interface Results {
  queries: Record<string, Row[]>;
  statuses: Record<string, number>;
  messages: Record<string, string>;
  stats: Record<string, Record<string, number>>;
}

interface Batch {
  queries: Record<string, string>;
  discovery: Record<string, string>;
  accelerate: number;
}

const emptyResults = (): Results => ({ queries: {}, statuses: {}, messages: {}, stats: {} });

/** Parse getQueries' `results` JSON; an empty id or SQL or a non-string value rejects the whole batch. */
export function parseBatch(text: string): Batch {
  const doc = JSON.parse(text) as Record<string, unknown>;
  const strings = (v: unknown, what: string): Record<string, string> => {
    if (v === undefined) return {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not an object`);
    const out: Record<string, string> = {};
    for (const [id, sql] of Object.entries(v)) {
      if (id === '' || typeof sql !== 'string' || sql === '') throw new Error(`${what} has an invalid entry ${JSON.stringify(id)}`);
      out[id] = sql;
    }
    return out;
  };
  const accelerate = Number(doc.accelerate ?? 0);
  return {
    queries: strings(doc.queries, 'queries'),
    discovery: strings(doc.discovery, 'discovery'),
    accelerate: Number.isFinite(accelerate) ? accelerate : 0,
  };
}

export interface DistributedDeps {
  registry: Registry;
  engine: SqlEngine;
  store: SimStore;
  flags: FlagValues;
  faults: FaultController;
}

export class DistributedRunner {
  private readonly deps: DistributedDeps;
  private unsent: Results | undefined;
  private accelerateUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(deps: DistributedDeps) {
    this.deps = deps;
  }

  /** initActivePlugin("distributed"): undefined when active, else the missing name. */
  activate(): string | undefined {
    const name = this.deps.flags.get('distributed_plugin');
    if (!this.deps.registry.resolveExact('distributed', name)) return name;
    this.deps.registry.setActive('distributed', name);
    const duration = this.deps.flags.num('distributed_denylist_duration');
    for (const sql of this.deps.store.denylistCrashedDistributed(unixSeconds() + duration)) {
      if (duration > 0) glog.warning('distributed.cpp', 88, `Denylisting distributed query that was running at the last crash: ${sql}`);
    }
    return undefined;
  }

  start(): void {
    this.schedule(0);
  }

  /** Stop scheduling; a run in progress is abandoned, not awaited (shutdown must not wait on a slow extension). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.cycle()
        .catch((err: unknown) => glog.error('distributed.cpp', 140, `Distributed query cycle failed: ${String(err)}`))
        .finally(() => {
          const accelerated = Date.now() < this.accelerateUntil;
          this.schedule(accelerated ? ACCELERATED_INTERVAL_MS : this.deps.flags.num('distributed_interval') * 1000);
        });
    }, ms);
  }

  private async cycle(): Promise<void> {
    if (this.deps.faults.hung) return;
    const { registry } = this.deps;
    const res = await registry.call('distributed', '', { action: 'getQueries' });
    if (res.status.code !== 0) {
      glog.vlog('distributed.cpp', 160, `Error getting distributed queries: ${res.status.message}`);
      await this.flush(emptyResults());
      return;
    }
    let batch: Batch;
    try {
      batch = parseBatch(res.response[0]?.results ?? '{}');
    } catch (err) {
      glog.error('distributed.cpp', 172, `Error parsing distributed queries: ${(err as Error).message}`);
      await this.flush(emptyResults());
      return;
    }
    if (batch.accelerate > 0) this.accelerateUntil = Date.now() + batch.accelerate * 1000;
    const results = emptyResults();
    for (const [id, sql] of Object.entries(batch.queries)) {
      if (this.stopped || this.deps.faults.hung) return;
      const probe = batch.discovery[id];
      if (probe !== undefined) {
        const d = await this.deps.engine.query(probe, 'discovery', id);
        if (!d.ok || d.rows.length === 0) continue;
      }
      await this.runOne(id, sql, results);
    }
    await this.flush(results);
  }

  private async runOne(id: string, sql: string, out: Results): Promise<void> {
    const { store, engine } = this.deps;
    if (store.isDenylisted(sql, unixSeconds())) {
      out.queries[id] = [];
      out.statuses[id] = 1;
      out.messages[id] = 'distributed query is denylisted';
      out.stats[id] = {};
      return;
    }
    store.markDistributedRunning(id, sql);
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const res = await engine.query(sql, 'distributed', id);
    const used = process.cpuUsage(cpu);
    store.clearDistributedRunning(id);
    out.queries[id] = res.ok ? res.rows : [];
    out.statuses[id] = res.ok ? 0 : 1;
    out.messages[id] = res.ok ? '' : res.message;
    out.stats[id] = {
      wall_time_ms: Math.round(performance.now() - t0),
      user_time: Math.round(used.user / 1000),
      system_time: Math.round(used.system / 1000),
      memory: process.memoryUsage.rss(),
    };
  }

  /** writeResults with anything unsent before plus `fresh`; kept for next time on failure. */
  private async flush(fresh: Results): Promise<void> {
    const all = this.unsent ?? emptyResults();
    for (const k of ['queries', 'statuses', 'messages', 'stats'] as const) Object.assign(all[k], fresh[k]);
    if (Object.keys(all.statuses).length === 0) return;
    const res = await this.deps.registry.call('distributed', '', { action: 'writeResults', results: JSON.stringify(all) });
    if (res.status.code === 0) {
      this.unsent = undefined;
    } else {
      this.unsent = all;
      glog.warning('distributed.cpp', 230, `Error writing distributed query results: ${res.status.message}`);
    }
  }
}
