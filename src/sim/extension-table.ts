/**
 * An extension's table as the engine sees it: the schema from the route info
 * sent at registration (docs/protocol/osquery-extensions.md#route-info), rows from the extension's `generate`
 * with osqueryd's context JSON. A non-zero status fails the query with the
 * extension's message.
 */
import type { ExtensionResponse, PluginRequest, PluginResponse } from '../osquery/protocol.js';
import { contextJson } from './sql/constraints.js';
import type { TableProvider } from './sql/engine.js';
import { normalizeColumnType, type ColumnSpec } from './sql/schema.js';

export function columnsFromRoutes(routes: PluginResponse): ColumnSpec[] {
  return routes
    .filter((r) => (r.id ?? 'column') === 'column' && typeof r.name === 'string' && r.name !== '')
    .map((r) => ({ name: r.name!, type: normalizeColumnType(r.type), options: Number.parseInt(r.op ?? '0', 10) || 0 }));
}

export function extensionTable(
  name: string,
  routes: PluginResponse,
  call: (request: PluginRequest) => Promise<ExtensionResponse>,
): TableProvider {
  return {
    spec: { name, columns: columnsFromRoutes(routes) },
    async generate(context) {
      const res = await call({ action: 'generate', context: contextJson(context) });
      if (res.status.code !== 0) throw new Error(res.status.message || `Table ${name} generate failed with code ${res.status.code}`);
      return res.response;
    },
  };
}
