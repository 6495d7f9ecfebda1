/**
 * QuarantinedQuery messages ↔ QuarantineState (issue 16), beside mapping.ts
 * so the quarantine methods stay in one place.
 */
import type { QuarantinedQuery, QuarantinedQuery__Output } from './gen/launcher/v1/QuarantinedQuery.js';
import type { QuarantineState } from './target.js';

export function toQuarantineMessage(q: QuarantineState): QuarantinedQuery {
  return {
    registration_id: q.registration_id,
    kind: q.kind,
    name: q.name,
    sql_hash: q.sql_hash,
    sql: q.sql,
    query_id: q.query_id,
    reason: q.reason,
    incidents: q.incidents,
    quarantined_at: q.quarantined_at,
    expires_at: q.expires_at,
    release_handle: q.release_handle,
  };
}

export function fromQuarantineMessage(m: QuarantinedQuery__Output): QuarantineState {
  return {
    registration_id: m.registration_id,
    kind: m.kind,
    name: m.name,
    sql_hash: m.sql_hash,
    sql: m.sql,
    query_id: m.query_id,
    reason: m.reason,
    incidents: m.incidents,
    quarantined_at: Number(m.quarantined_at),
    expires_at: Number(m.expires_at),
    release_handle: m.release_handle,
  };
}
