/**
 * The six device methods, server side (docs/protocol/device.md#methods, docs/protocol/device.md#server-side). Params are
 * validated with zod; a decode failure is JSON-RPC error -32000. Node keys
 * are checked on every call: an unknown or revoked one (and a bad enroll
 * secret) gets `node_invalid: true`; a disabled tenant gets
 * `disable_device: true`.
 */
import { z } from 'zod';
import type { DevServerStore, NodeRecord } from './store.js';

export const RPC_METHODS = [
  'RequestEnrollment',
  'RequestConfig',
  'PublishLogs',
  'RequestQueries',
  'PublishResults',
  'CheckHealth',
] as const;
export type RpcMethod = (typeof RPC_METHODS)[number];

export type RpcOutcome = { result: unknown } | { error: { code: number; message: string } };

export const DECODE_ERROR = -32000;
export const METHOD_NOT_FOUND = -32601;

const enrollParams = z.object({
  enroll_secret: z.string(),
  host_identifier: z.string(),
  EnrollmentDetails: z.record(z.string(), z.string()).nullish(),
});
const nodeKeyParams = z.object({ node_key: z.string() });
const publishLogsParams = z.object({ node_key: z.string(), LogType: z.number().int(), Logs: z.array(z.string()).nullable() });
const resultItem = z.object({
  query_name: z.string(),
  status: z.number().int(),
  rows: z.array(z.record(z.string(), z.string())).nullable(),
  stats: z.object({ wall_time_ms: z.number(), user_time: z.number(), system_time: z.number(), memory: z.number() }).nullable(),
  message: z.string(),
});
const publishResultsParams = z.object({ node_key: z.string(), Results: z.array(resultItem).nullable() });

function decodeError(method: string, error: z.ZodError): RpcOutcome {
  const detail = error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`)
    .join('; ');
  return { error: { code: DECODE_ERROR, message: `decode ${method} params: ${detail}` } };
}

export function isRpcMethod(m: unknown): m is RpcMethod {
  return typeof m === 'string' && (RPC_METHODS as readonly string[]).includes(m);
}

export function handleRpc(store: DevServerStore, method: RpcMethod, params: unknown): RpcOutcome {
  if (method === 'CheckHealth') return { result: { status: 1 } };

  if (method === 'RequestEnrollment') {
    const p = enrollParams.safeParse(params);
    if (!p.success) return decodeError(method, p.error);
    const tenant = store.tenantOfSecret(p.data.enroll_secret);
    if (tenant === undefined || p.data.host_identifier === '') {
      const error_code = tenant === undefined ? 'enroll_secret_unknown' : 'host_identifier_missing';
      return { result: { node_key: '', node_invalid: true, wrong_region: false, disable_device: false, error_code } };
    }
    if (store.isDisabled(tenant)) return { result: { node_key: '', node_invalid: false, wrong_region: false, disable_device: true } };
    const nodeKey = store.issueNodeKey(tenant, p.data.host_identifier, p.data.EnrollmentDetails ?? {});
    return { result: { node_key: nodeKey, node_invalid: false, wrong_region: false, disable_device: false } };
  }

  const schema = method === 'PublishLogs' ? publishLogsParams : method === 'PublishResults' ? publishResultsParams : nodeKeyParams;
  const p = schema.safeParse(params);
  if (!p.success) return decodeError(method, p.error);
  const node: NodeRecord | undefined = store.node(p.data.node_key);
  if (!node) return { result: invalidResult(method) };
  const disable_device = store.isDisabled(node.tenant);
  if (disable_device) return { result: { ...invalidResult(method), node_invalid: false, disable_device } };

  switch (method) {
    case 'RequestConfig':
      return { result: { config: store.config(node.tenant), node_invalid: false, disable_device } };
    case 'RequestQueries':
      return { result: { Queries: { queries: store.takeQueries(node) }, node_invalid: false, disable_device } };
    case 'PublishLogs': {
      const d = p.data as z.infer<typeof publishLogsParams>;
      store.addLogs(node, d.LogType, d.Logs ?? []);
      return { result: { message: 'ok', node_invalid: false, disable_device } };
    }
    case 'PublishResults': {
      const d = p.data as z.infer<typeof publishResultsParams>;
      store.addResults(node, d.Results ?? []);
      return { result: { message: '', node_invalid: false, disable_device } };
    }
  }
}

function invalidResult(method: RpcMethod): Record<string, unknown> {
  switch (method) {
    case 'RequestConfig':
      return { config: '', node_invalid: true, disable_device: false };
    case 'RequestQueries':
      return { Queries: { queries: {} }, node_invalid: true, disable_device: false };
    default:
      return { message: '', node_invalid: true, disable_device: false };
  }
}
