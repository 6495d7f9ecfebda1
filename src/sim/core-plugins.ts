/**
 * The core's own registry items beyond the filesystem config and logger:
 * every core table as a `table` plugin, the `sql` plugin, and the `tls`
 * config/logger/distributed plugins, which exist by name (so they conflict
 * and can be activated) but fail every call: the stand-in has no TLS client.
 */
import { parseQueryContext, tableRoutes, type ColumnDefinition } from '../osquery/plugins.js';
import { response, status } from '../osquery/protocol.js';
import type { CorePlugin } from './registry.js';
import type { TableContext } from './sql/constraints.js';
import type { SqlEngine, TableProvider } from './sql/engine.js';
import type { TableSpec } from './sql/schema.js';

export const tlsPlugin: CorePlugin = {
  call: () => response(status(1, 'TLS plugins are not supported by osqueryd-sim')),
};

/** A generate context from osqueryd's JSON (extensions may call core tables through the manager). */
function contextFor(spec: TableSpec, text: string | undefined): TableContext {
  const parsed = parseQueryContext(text);
  const constraints = spec.columns.map((c) => ({
    name: c.name,
    list: parsed.constraints.find((x) => x.name === c.name)?.list ?? [],
    affinity: c.type,
  }));
  return { constraints, colsUsed: spec.columns.map((c) => c.name), colsUsedBitset: (1n << BigInt(spec.columns.length)) - 1n };
}

export function coreTablePlugin(provider: TableProvider): CorePlugin {
  return {
    async call(request) {
      if (request.action === 'columns')
        return response(status(0, 'OK'), tableRoutes({ columns: provider.spec.columns as ColumnDefinition[] }));
      if (request.action !== 'generate') return response(status(1, `Unknown table plugin action: ${request.action ?? ''}`));
      try {
        const rows = await provider.generate(contextFor(provider.spec, request.context));
        const out = rows.map((r) =>
          Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null || v === undefined ? '' : String(v)])),
        );
        return response(status(0, 'OK'), out);
      } catch (err) {
        return response(status(1, (err as Error).message));
      }
    },
  };
}

/** The `sql` plugin: `{action:"query", query}` and `{action:"columns", query}`. */
export function sqlPlugin(engine: SqlEngine): CorePlugin {
  return {
    async call(request) {
      const sql = request.query ?? '';
      const res =
        request.action === 'columns' ? engine.columns(sql) : request.action === 'query' ? await engine.query(sql, 'call', '') : undefined;
      if (!res) return response(status(1, `Unknown sql plugin action: ${request.action ?? ''}`));
      return res.ok ? response(status(0, 'OK'), res.rows) : response(status(1, res.message));
    },
  };
}
