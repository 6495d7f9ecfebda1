/**
 * The `kolide_grpc` distributed plugin (docs/protocol/device.md#distributed-plugin). getQueries forwards
 * to RequestQueries when the throttle allows, else answers "no queries" at
 * once. writeResults sends one Result per `statuses` entry to PublishResults
 * right away (no buffering, no retry); a failure is status 1 to osqueryd,
 * which then resends the results on its next cycle.
 */
import type { DistributedPlugin, DistributedQueries, DistributedResults } from '../../src/osquery/plugins.js';
import type { DistributedQueryResult, QueryStats } from '../../src/device/index.js';
import type { ExtensionContext } from './context.js';
import type { Session } from './session.js';
import { QueryThrottle } from './query-throttle.js';
import { errorMessage } from '../../src/errors.js';

function int(v: unknown): number {
  const n = Number(v);
  return Number.isFinite(n) ? Math.trunc(n) : 0;
}

/** osquery's writeResults payload as PublishResults `Results` (osquery-go shapes). */
export function toDeviceResults(results: DistributedResults): DistributedQueryResult[] {
  return Object.entries(results.statuses).map(([name, status]) => {
    const rows = Object.hasOwn(results.queries, name) ? results.queries[name]! : undefined;
    const stats = Object.hasOwn(results.stats, name) ? results.stats[name]! : undefined;
    const s: QueryStats | null = stats
      ? {
          wall_time_ms: int(stats.wall_time_ms),
          user_time: int(stats.user_time),
          system_time: int(stats.system_time),
          memory: int(stats.memory),
        }
      : null;
    return {
      query_name: name,
      status: int(status),
      // osquery-go: an empty array becomes null, a missing entry [].
      rows: rows === undefined ? [] : rows.length === 0 ? null : rows,
      stats: s,
      message: results.messages[name] ?? '',
    };
  });
}

export function createDistributedPlugin(ctx: ExtensionContext, session: Session): DistributedPlugin & { readonly throttle: QueryThrottle } {
  const { opts, state } = ctx;
  const throttle = new QueryThrottle(opts.distributedForwardingIntervalMs, opts.distributedStartupWindowMs);
  /** Failed results for quarantined queries, straight to the backend (osqueryd never sees them). */
  const publishRefused = async (items: DistributedQueryResult[]): Promise<void> => {
    try {
      await session.withNodeKey('results', (nodeKey, call) => opts.client.publishResults(nodeKey, items, call));
    } catch (err) {
      state.recordError('results', err);
      ctx.log.warn({ err: errorMessage(err), queries: items.length }, 'could not publish the failed results of quarantined queries');
    }
  };
  return {
    kind: 'distributed',
    name: 'kolide_grpc',
    throttle,
    async getQueries(): Promise<DistributedQueries> {
      // osqueryd asks again only once it has finished its previous batch: what is still unanswered was not run.
      ctx.quarantine.batchEnded();
      if (!state.active || !throttle.take()) return { queries: {} };
      try {
        const res = await session.withNodeKey('queries', (nodeKey, call) => opts.client.requestQueries(nodeKey, call));
        throttle.accelerate(res.queries.accelerate);
        const handed = ctx.quarantine.handOut(res.queries.queries, res.queries.discovery);
        if (handed.refused.length > 0) await publishRefused(handed.refused);
        const out: DistributedQueries = { queries: handed.queries };
        if (handed.discovery && Object.keys(handed.discovery).length > 0) out.discovery = handed.discovery;
        if (res.queries.accelerate > 0) out.accelerate = res.queries.accelerate;
        return out;
      } catch (err) {
        state.recordError('queries', err);
        throw err;
      }
    },
    async writeResults(results: DistributedResults): Promise<void> {
      ctx.quarantine.answered(Object.keys(results.statuses));
      const items = toDeviceResults(results);
      try {
        await session.withNodeKey('results', (nodeKey, call) => opts.client.publishResults(nodeKey, items, call));
      } catch (err) {
        state.recordError('results', err);
        throw err;
      }
    },
  };
}
