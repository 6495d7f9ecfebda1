/**
 * Strict, crash-free decoding of JSON-RPC responses (docs/protocol/device.md#response, docs/protocol/device.md#decoding): the
 * envelope's `jsonrpc` and `id` are ignored, a non-null `error` fails the
 * call with its message, a missing or null `result` fails, a non-null
 * `result.err` fails (a Go `error` field cannot be decoded), and each
 * method's result is validated field by field with Go's matching rules.
 */
import { z } from 'zod';
import { DeviceError } from './device-error.js';
import { describeIssues, foldKey, goBool, goInt, goInt32, goString, goStringMap, goStruct, pickFields } from './go-json.js';
import type { ConfigResult, DeviceMethod, EnrollmentResult, HealthResult, PublishResult, QueriesResult } from './types.js';

const flags = {
  node_invalid: goBool(),
  disable_device: goBool(),
  error_code: goString(),
};

const enrollmentSchema = goStruct({
  node_key: goString(),
  wrong_region: goBool(),
  deployment_urls: goStruct({
    enrollment_url: goString(),
    control_server_url: goString(),
    osquery_publisher_url: goString(),
  }).nullish(),
  agent_ingester_auth_token: goString(),
  agent_ingester_hpke_public_key: goString(),
  agent_ingester_hpke_psk: goString(),
  ...flags,
}).transform(
  (r): EnrollmentResult => ({
    nodeKey: r.node_key,
    nodeInvalid: r.node_invalid,
    wrongRegion: r.wrong_region,
    disableDevice: r.disable_device,
    errorCode: r.error_code,
    deploymentUrls: r.deployment_urls
      ? {
          enrollmentUrl: r.deployment_urls.enrollment_url,
          controlServerUrl: r.deployment_urls.control_server_url,
          osqueryPublisherUrl: r.deployment_urls.osquery_publisher_url,
        }
      : undefined,
    agentIngesterAuthToken: r.agent_ingester_auth_token,
    agentIngesterHpkePublicKey: r.agent_ingester_hpke_public_key,
    agentIngesterHpkePsk: r.agent_ingester_hpke_psk,
  }),
);

const configSchema = goStruct({ config: goString(), ...flags }).transform(
  (r): ConfigResult => ({ config: r.config, nodeInvalid: r.node_invalid, disableDevice: r.disable_device, errorCode: r.error_code }),
);

const publishSchema = goStruct({ message: goString(), ...flags }).transform(
  (r): PublishResult => ({ message: r.message, nodeInvalid: r.node_invalid, disableDevice: r.disable_device, errorCode: r.error_code }),
);

const queriesSchema = goStruct({
  Queries: goStruct({ queries: goStringMap(), discovery: goStringMap(), accelerate: goInt() }),
  ...flags,
}).transform(
  (r): QueriesResult => ({
    queries: { queries: r.Queries.queries ?? {}, discovery: r.Queries.discovery, accelerate: r.Queries.accelerate },
    nodeInvalid: r.node_invalid,
    disableDevice: r.disable_device,
    errorCode: r.error_code,
  }),
);

const healthSchema = goStruct({ status: goInt32(), error_code: goString() }).transform(
  (r): HealthResult => ({ status: r.status, errorCode: r.error_code }),
);

export interface ResultTypes {
  RequestEnrollment: EnrollmentResult;
  RequestConfig: ConfigResult;
  PublishLogs: PublishResult;
  RequestQueries: QueriesResult;
  PublishResults: PublishResult;
  CheckHealth: HealthResult;
}

const schemas: { [M in DeviceMethod]: z.ZodType<ResultTypes[M]> } = {
  RequestEnrollment: enrollmentSchema,
  RequestConfig: configSchema,
  PublishLogs: publishSchema,
  RequestQueries: queriesSchema,
  PublishResults: publishSchema,
  CheckHealth: healthSchema,
};

/** go-kit's standard texts for an error object with an empty message. */
const standardErrorText: Record<number, string> = {
  [-32700]: 'Parse error',
  [-32600]: 'Invalid Request',
  [-32601]: 'Method not found',
  [-32602]: 'Invalid params',
  [-32603]: 'Internal error',
};

const rpcErrorSchema = goStruct({ code: goInt(), message: goString(), data: z.unknown().optional() });

function responseError(method: DeviceMethod, what: string, httpStatus: number, cause?: unknown): DeviceError {
  return new DeviceError('E_DEVICE_RESPONSE', method, `${method}: bad response (HTTP ${httpStatus}): ${what}`, { httpStatus, cause });
}

/** Whether a body is a JSON-RPC response at all: a JSON object with a `result` or `error` key (Go's key folding). */
export function hasRpcBody(body: Buffer): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return false;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return false;
  const envelope = pickFields(parsed, ['result', 'error']) as { result?: unknown; error?: unknown };
  return envelope.result !== undefined || envelope.error !== undefined;
}

/** The start of a body, one line, quoted: for messages. */
export function previewBody(body: Buffer): string {
  return body.length === 0 ? 'empty body' : `starts ${preview(body.subarray(0, 400).toString('utf8'))}`;
}

function preview(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return JSON.stringify(oneLine.length > 80 ? `${oneLine.slice(0, 80)}…` : oneLine);
}

/** preview() of a parsed value; JSON.stringify overflows the stack on deeply nested input (RangeError). */
function previewValue(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch {
    text = Array.isArray(value) ? '[… nested too deeply to show]' : '{… nested too deeply to show}';
  }
  return preview(text);
}

/** Decode one response body for `method`, or throw a DeviceError. Never throws anything else. */
export function decodeResponse<M extends DeviceMethod>(method: M, body: Buffer, httpStatus = 200): ResultTypes[M] {
  const text = body.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw responseError(method, `body is not JSON (${body.length} bytes, starts ${preview(text)})`, httpStatus, err);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw responseError(method, `body is not a JSON object (${preview(text)})`, httpStatus);
  }
  const envelope = pickFields(parsed, ['result', 'error']) as { result?: unknown; error?: unknown };

  if (envelope.error !== undefined && envelope.error !== null) {
    const e = rpcErrorSchema.safeParse(envelope.error);
    if (!e.success) throw responseError(method, `malformed error object: ${describeIssues(e.error)}`, httpStatus);
    const message = e.data.message || standardErrorText[e.data.code] || `JSON-RPC error ${e.data.code}`;
    const status = httpStatus === 200 ? '' : ` (HTTP ${httpStatus})`;
    throw new DeviceError('E_DEVICE_REJECTED', method, `${method}: server returned JSON-RPC error ${e.data.code}${status}: ${message}`, {
      httpStatus,
      rpcCode: e.data.code,
    });
  }
  if (envelope.result === undefined || envelope.result === null) {
    throw responseError(method, `no "result" in ${preview(text)}`, httpStatus);
  }
  const result = envelope.result;
  if (typeof result !== 'object' || Array.isArray(result)) {
    throw responseError(method, `"result" is not an object (${previewValue(result)})`, httpStatus);
  }
  for (const [key, value] of Object.entries(result as Record<string, unknown>)) {
    if (foldKey(key) === 'err' && value !== null) {
      throw responseError(method, `"result.${key}" is non-null (${previewValue(value)}); Go cannot decode it into an error`, httpStatus);
    }
  }
  const decoded = schemas[method].safeParse(result);
  if (!decoded.success) throw responseError(method, `result has wrong types: ${describeIssues(decoded.error)}`, httpStatus);
  return decoded.data;
}
