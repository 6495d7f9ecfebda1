/**
 * Admin HTTP endpoints of the dev server (127.0.0.1, development and tests).
 * The server lets a request reach these only with its admin token
 * (`Authorization: Bearer <token>`, admin-token.ts); others get 401.
 *
 *   GET  /admin/stats                              counters per method, faults
 *   GET  /admin/tenants                            tenants
 *   POST /admin/tenants   {name, secrets, config?} create / add secrets
 *   POST /admin/config    {tenant, config}         set a tenant's config (JSON text or object)
 *   POST /admin/queries   {tenant, sql, name?}     queue a distributed query → {name}
 *   GET  /admin/logs?tenant=&type=status|result|0|4&host=&after=&format=ndjson
 *   GET  /admin/results?tenant=&query=&host=&format=ndjson
 * `format=ndjson` answers one JSON object per line (application/x-ndjson),
 * for `| head` and `jq -c`; the default is one JSON document.
 *   GET  /admin/nodes?tenant=
 *   POST /admin/revoke    {tenant?, node_key?}     revoke node keys → {revoked}
 *   POST /admin/disable   {tenant, disabled}       answer disable_device to a tenant
 *   POST /admin/fault     {mode, methods?, count?, delayMs?, sizeBytes?}
 *   DELETE /admin/fault
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { errorMessage, isLauncherError } from '../errors.js';
import { faultSchema, type Fault } from './faults.js';
import type { DevServerStore } from './store.js';
import { send, sendJson } from './http-io.js';

export interface AdminTarget {
  readonly store: DevServerStore;
  stats(): unknown;
  setFault(fault: Fault | undefined): void;
}

const tenantBody = z.object({ name: z.string().min(1), secrets: z.array(z.string().min(1)).default([]), config: z.unknown().optional() });
const configBody = z.object({ tenant: z.string().min(1), config: z.unknown() });
const queryBody = z.object({ tenant: z.string().min(1), sql: z.string().min(1), name: z.string().min(1).optional() });
const revokeBody = z.object({ tenant: z.string().optional(), node_key: z.string().optional() });
const disableBody = z.object({ tenant: z.string().min(1), disabled: z.boolean().default(true) });

function configText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function logType(v: string | null): number | undefined {
  if (v === null || v === '') return undefined;
  if (v === 'status') return 4;
  if (v === 'result') return 0;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new z.ZodError([{ code: 'custom', path: ['type'], message: `unknown log type ${v}`, input: v }]);
  return n;
}

function optional(v: string | null): string | undefined {
  return v === null || v === '' ? undefined : v;
}

/**
 * A stored record as the admin API sends it, in the project's one wire style (README "CLI output"): its own
 * field names in snake_case, epoch-millisecond `…At` times as ISO-8601 `…_at`. Nested values (rows, details,
 * stats) are the device's own data and pass unchanged.
 */
export function wireRecord(record: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) {
    const snake = k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    out[snake] = /At$/.test(k) && typeof v === 'number' ? new Date(v).toISOString() : v;
  }
  return out;
}

/** `{key: items}` as one document, or with `format=ndjson` one item per line; every item in the wire style. */
function sendList(res: ServerResponse, q: URLSearchParams, key: string, records: readonly object[]): void {
  const items = records.map(wireRecord);
  const format = q.get('format') ?? 'json';
  if (format === 'ndjson') return send(res, 200, items.map((i) => `${JSON.stringify(i)}\n`).join(''), 'application/x-ndjson');
  if (format !== 'json') return sendJson(res, 400, { error: `format=${format}: expected json or ndjson` });
  return sendJson(res, 200, { [key]: items });
}

export function handleAdmin(target: AdminTarget, req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): void {
  const route = `${req.method} ${url.pathname.replace(/\/+$/, '')}`;
  const q = url.searchParams;
  const json = (): unknown => (body.length === 0 ? {} : JSON.parse(body.toString('utf8')));
  const store = target.store;
  try {
    switch (route) {
      case 'GET /admin/stats':
        return sendJson(res, 200, target.stats());
      case 'GET /admin/tenants':
        return sendJson(res, 200, { tenants: store.tenants() });
      case 'POST /admin/tenants': {
        const b = tenantBody.parse(json());
        store.upsertTenant({ name: b.name, secrets: b.secrets, ...(b.config !== undefined ? { config: configText(b.config) } : {}) });
        return sendJson(res, 200, { ok: true });
      }
      case 'POST /admin/config': {
        const b = configBody.parse(json());
        store.setConfig(b.tenant, configText(b.config));
        return sendJson(res, 200, { ok: true });
      }
      case 'POST /admin/queries': {
        const b = queryBody.parse(json());
        return sendJson(res, 200, { name: store.addQuery(b.tenant, b.sql, b.name) });
      }
      case 'GET /admin/logs': {
        const after = optional(q.get('after'));
        const logs = store.logs({
          tenant: optional(q.get('tenant')),
          logType: logType(q.get('type')),
          hostIdentifier: optional(q.get('host')),
          afterId: after === undefined ? undefined : Number(after),
        });
        return sendList(res, q, 'logs', logs);
      }
      case 'GET /admin/results':
        return sendList(
          res,
          q,
          'results',
          store.results({
            tenant: optional(q.get('tenant')),
            queryName: optional(q.get('query')),
            hostIdentifier: optional(q.get('host')),
          }),
        );
      case 'GET /admin/nodes':
        return sendJson(res, 200, { nodes: store.nodes(optional(q.get('tenant'))).map(({ nodeKey: _k, ...rest }) => wireRecord(rest)) });
      case 'POST /admin/revoke': {
        const b = revokeBody.parse(json());
        return sendJson(res, 200, { revoked: store.revoke({ tenant: b.tenant, nodeKey: b.node_key }) });
      }
      case 'POST /admin/disable': {
        const b = disableBody.parse(json());
        store.setDisabled(b.tenant, b.disabled);
        return sendJson(res, 200, { ok: true });
      }
      case 'POST /admin/fault':
        target.setFault(faultSchema.parse(json()));
        return sendJson(res, 200, { ok: true });
      case 'DELETE /admin/fault':
        target.setFault(undefined);
        return sendJson(res, 200, { ok: true });
      default:
        return sendJson(res, 404, { error: `no admin route ${route}` });
    }
  } catch (err) {
    if (err instanceof SyntaxError || err instanceof z.ZodError) return sendJson(res, 400, { error: errorMessage(err) });
    if (isLauncherError(err, 'E_NOT_FOUND')) return sendJson(res, 404, { error: err.message });
    if (isLauncherError(err)) return sendJson(res, 400, { error: err.message });
    return sendJson(res, 500, { error: errorMessage(err) });
  }
}
