/**
 * Request bodies exactly as launcher's go-kit v0.9.0 client writes them
 * (docs/protocol/device.md#request, docs/protocol/device.md#methods): `{"jsonrpc":"","method":…,"params":…,"id":N}` plus a
 * trailing newline, params keys in Go struct order, untagged keys capitalised.
 */
import {
  ENROLLMENT_DETAIL_KEYS,
  type DeviceMethod,
  type DistributedQueryResult,
  type EnrollmentDetails,
  type EnrollmentParams,
} from './types.js';

export function encodeRequest(method: DeviceMethod, params: unknown, id: number): Buffer {
  return Buffer.from(`${JSON.stringify({ jsonrpc: '', method, params, id })}\n`, 'utf8');
}

/** All 17 keys, in order, as strings ("" when missing). */
export function orderedDetails(details: Partial<EnrollmentDetails>): EnrollmentDetails {
  const out = {} as EnrollmentDetails;
  for (const key of ENROLLMENT_DETAIL_KEYS) {
    const v = details[key];
    out[key] = v === undefined || v === null ? '' : String(v);
  }
  return out;
}

export function enrollmentParams(p: EnrollmentParams): unknown {
  return { enroll_secret: p.enrollSecret, host_identifier: p.hostIdentifier, EnrollmentDetails: orderedDetails(p.details) };
}

export function nodeKeyParams(nodeKey: string): unknown {
  return { node_key: nodeKey };
}

export function publishLogsParams(nodeKey: string, logType: number, logs: readonly string[]): unknown {
  return { node_key: nodeKey, LogType: logType, Logs: logs };
}

export function publishResultsParams(nodeKey: string, results: readonly DistributedQueryResult[]): unknown {
  return {
    node_key: nodeKey,
    Results:
      results.length === 0
        ? null
        : results.map((r) => ({
            query_name: r.query_name,
            status: r.status,
            rows: r.rows,
            stats: r.stats
              ? {
                  wall_time_ms: r.stats.wall_time_ms,
                  user_time: r.stats.user_time,
                  system_time: r.stats.system_time,
                  memory: r.stats.memory,
                }
              : null,
            message: r.message,
          })),
  };
}
