/**
 * issue 17: UpdateStatusResponse ↔ UpdateStatusInfo (src/control/target.ts),
 * beside mapping.ts so the update rpcs stay in files of their own. Empty
 * strings mean "none" on the wire.
 */
import type { UpdateStatusResponse, UpdateStatusResponse__Output } from './gen/launcher/v1/UpdateStatusResponse.js';
import type { UpdateStatusInfo } from './target.js';

const ms = (iso: string): number => Date.parse(iso) || 0;
const iso = (v: string | number | undefined | null): string =>
  v === undefined || v === null || v === '' ? '' : new Date(Number(v)).toISOString();
const orNull = (s: string | undefined): string | null => (s === undefined || s === '' ? null : s);

export function toUpdateStatusMessage(s: UpdateStatusInfo): UpdateStatusResponse {
  const r = s.rollout;
  return {
    enabled: s.enabled,
    channel: s.channel ?? '',
    metadata_url: s.metadataUrl ?? '',
    ...(s.lastCheck ? { last_check_unix_ms: ms(s.lastCheck.at) } : {}),
    last_check_result: s.lastCheck?.result ?? '',
    last_check_error: s.lastCheck?.error ?? '',
    available_version: s.lastCheck?.available ?? '',
    ...(r
      ? {
          rollout: {
            version: r.version,
            state: r.state,
            canary: r.canary,
            order: r.order,
            done: r.done,
            current: r.current ?? '',
            started_at_unix_ms: ms(r.startedAt),
            updated_at_unix_ms: ms(r.updatedAt),
            detail: r.detail ?? '',
          },
        }
      : {}),
    instances: s.instances.map((i) => ({
      registration_id: i.registrationId,
      running_version: i.runningVersion ?? '',
      assigned_version: i.assignedVersion ?? '',
      previous_version: i.previousVersion ?? '',
      pinned_version: i.pinnedVersion ?? '',
      pin_source: i.pinSource ?? '',
      pending_version: i.pendingVersion ?? '',
    })),
    installed_versions: s.installedVersions,
    bad_versions: s.badVersions,
  };
}

export function fromUpdateStatusMessage(m: UpdateStatusResponse__Output): UpdateStatusInfo {
  const r = m.rollout;
  return {
    enabled: m.enabled,
    channel: orNull(m.channel),
    metadataUrl: orNull(m.metadata_url),
    lastCheck:
      m.last_check_unix_ms !== undefined && m.last_check_unix_ms !== null
        ? {
            at: iso(m.last_check_unix_ms),
            result: m.last_check_result,
            error: orNull(m.last_check_error),
            available: orNull(m.available_version),
          }
        : null,
    rollout: r
      ? {
          version: r.version,
          state: r.state,
          canary: r.canary,
          order: r.order,
          done: r.done,
          current: orNull(r.current),
          startedAt: iso(r.started_at_unix_ms),
          updatedAt: iso(r.updated_at_unix_ms),
          detail: orNull(r.detail),
        }
      : null,
    instances: m.instances.map((i) => ({
      registrationId: i.registration_id,
      runningVersion: orNull(i.running_version),
      assignedVersion: orNull(i.assigned_version),
      previousVersion: orNull(i.previous_version),
      pinnedVersion: orNull(i.pinned_version),
      pinSource: orNull(i.pin_source),
      pendingVersion: orNull(i.pending_version),
    })),
    installedVersions: m.installed_versions,
    badVersions: m.bad_versions.map((b) => ({ version: b.version, reason: b.reason })),
  };
}
