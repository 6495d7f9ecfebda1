/**
 * The osqueryd update service (src/update, issue 17) wired to the rest of the
 * supervisor: its settings from the config, the Runner seen as its `Fleet`,
 * its status as state-table rows, and its events as status logs to the
 * backend (the affected registration's own buffer and the vendor's; a
 * tenant never hears about another tenant).
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LauncherConfig } from '../config/schema.js';
import { LauncherError } from '../errors.js';
import type { Runner } from '../runtime/runner.js';
import type { UpdateState } from '../state/types.js';
import type { LogBuffer } from '../store/log-buffer.js';
import type { Fleet, UpdateService, UpdateSettings, UpdateStatus } from '../update/service.js';
import type { UpdateEvent } from '../update/store.js';
import { parseRegistrationId } from '../registration.js';

/** The trusted root shipped with the package (`trusted_root: package`). */
export function packagedTrustedRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = here.includes('/dist/') ? resolve(here, '../../..') : resolve(here, '../..');
  return join(root, 'config', 'osqueryd-update-root.json');
}

/** The update settings of the config; undefined without an `update:` section. E_CONFIG when the trusted root is missing. */
export function updateSettings(cfg: LauncherConfig): UpdateSettings | undefined {
  const u = cfg.update;
  if (!u) return undefined;
  const trustedRootPath = u.trusted_root === 'package' ? packagedTrustedRoot() : u.trusted_root;
  if (!existsSync(trustedRootPath))
    throw new LauncherError(
      'E_CONFIG',
      `update.trusted_root: ${trustedRootPath} does not exist${u.trusted_root === 'package' ? ' (this package ships no trusted root: give a path)' : ''}`,
    );
  return {
    metadataUrl: u.metadata_url,
    targetsUrl: u.targets_url,
    trustedRootPath,
    channel: u.channel,
    checkIntervalMs: u.check_interval_seconds * 1000,
    soakMs: u.soak_seconds * 1000,
    stepMs: u.step_seconds * 1000,
    healthyWithinMs: u.healthy_within_seconds * 1000,
    keepVersions: u.keep_versions,
    ...(u.canary ? { canary: u.canary } : {}),
    fetchTimeoutMs: u.timeout_seconds * 1000,
    maxTargetBytes: u.max_target_mb * 1024 * 1024,
  };
}

// 'stopped' is not among them: a supervisor stopping (shutdown, removal) is no verdict on the version.
const ENDED = new Set(['exited', 'failed', 'backoff']);

/** The Runner as the update service sees it. */
export function runnerFleet(runner: Runner): Fleet {
  return {
    ids: () =>
      runner
        .status({ extension: false })
        .filter((s) => s.state !== 'disabled')
        .map((s) => s.id),
    status: (id) => {
      let s: ReturnType<Runner['statusOf']>;
      try {
        s = runner.statusOf(parseRegistrationId(id), { extension: false });
      } catch {
        return undefined;
      }
      return {
        runId: s.run_id,
        healthy: s.healthy,
        ended: ENDED.has(s.state),
        unhealthy: s.state === 'unhealthy',
        crashLoop: s.crash_loop,
        requestedRestarts: s.requested_restarts,
        version: s.osqueryd_version,
        lastError: s.last_error,
      };
    },
    restart: async (id) => void (await runner.restart(parseRegistrationId(id))),
    stopping: () => runner.shuttingDown,
    probe: async (id, timeoutMs) => {
      const rows = await runner.query(parseRegistrationId(id), 'select version from osquery_info', timeoutMs);
      return rows[0]?.version ?? null;
    },
  };
}

/** The state-table rows of `ids`. */
export function updateRows(status: UpdateStatus): UpdateState[] {
  return status.instances.map((i) => ({
    registration_id: i.registrationId,
    running_version: i.runningVersion,
    assigned_version: i.assignedVersion,
    previous_version: i.previousVersion,
    pinned_version: i.pinnedVersion,
    pin_source: i.pinSource,
    pending_version: i.pendingVersion,
    channel: status.channel,
    available_version: status.lastCheck?.available ?? null,
    rollout_version: status.rollout?.version ?? null,
    rollout_state: status.rollout?.state ?? null,
    last_check_at: status.lastCheck ? Date.parse(status.lastCheck.at) : null,
    last_check_result: status.lastCheck?.result ?? null,
    last_check_error: status.lastCheck?.error ?? null,
    bad_versions: status.badVersions.map((b) => b.version).join(','),
  }));
}

/** What a tenant may see of the host-wide status: its own instance and the rollout's version and state, no other ids. */
export function scopedStatus(status: UpdateStatus, ids: readonly string[] | undefined): UpdateStatus {
  if (!ids) return status;
  const r = status.rollout;
  return {
    ...status,
    instances: status.instances.filter((i) => ids.includes(i.registrationId)),
    rollout: r
      ? {
          ...r,
          canary: ids.includes(r.canary) ? r.canary : '',
          order: r.order.filter((id) => ids.includes(id)),
          done: r.done.filter((id) => ids.includes(id)),
          current: r.current && ids.includes(r.current) ? r.current : null,
          detail: null,
        }
      : null,
    badVersions: status.badVersions.map((b) => ({ version: b.version, reason: '' })),
  };
}

/** An update event as an osquery-shaped status log (short keys, like the buffered osqueryd lines) for the backend. */
export function bufferUpdateEvent(
  logBuffer: LogBuffer,
  vendorId: string,
  known: () => string[],
  e: UpdateEvent,
  severity: 'info' | 'warn' | 'error',
): void {
  const at = new Date(e.at);
  const line = JSON.stringify({
    s: severity === 'error' ? 2 : severity === 'warn' ? 1 : 0,
    f: 'osqueryd-update',
    i: 0,
    m: `osquery-launcher update: ${e.detail}`,
    h: hostname(),
    c: at.toUTCString(),
    u: Math.floor(at.getTime() / 1000),
  });
  const ids = known();
  const to = new Set<string>();
  if (ids.includes(vendorId)) to.add(vendorId);
  if (e.registrationId && ids.includes(e.registrationId)) to.add(e.registrationId);
  for (const id of to) void logBuffer.appendQueued(id, 'status', [line]); // waits out another process's lock
}

export type { UpdateService };
