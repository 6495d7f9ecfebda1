/**
 * The live StateSource (src/state) over the runtime and the stores: every
 * state table row and every control API instance/history response is built
 * here, once.
 */
import type { Runner } from '../runtime/runner.js';
import type { RegistrationStatus } from '../runtime/supervisor.js';
import type { Registration } from '../store/registrations.js';
import { isRegistrationId, limitsToWire } from '../registration.js';
import type { RunRecord as StoredRun } from '../store/run-history.js';
import type { LogBuffer } from '../store/log-buffer.js';
import type { NodeKeyStore } from '../store/node-keys.js';
import type { QuarantineEntry, QuarantineStore } from '../store/quarantine.js';
import type { StateSource } from '../state/tables.js';
import type {
  CheckupState,
  DeviceState,
  InstanceInfo,
  LogBufferState,
  QuarantineState,
  RegistrationState,
  RunRecord,
  UpdateState,
} from '../state/types.js';

const ms = (iso: string | undefined): number | null => (iso ? Date.parse(iso) : null);

export function toRunRecord(r: StoredRun): RunRecord {
  return {
    registration_id: r.registrationId,
    run_id: r.runId,
    osqueryd_path: r.osquerydPath,
    version: r.osquerydVersion ?? null,
    pid: r.pid ?? null,
    start_time: ms(r.startedAt) ?? 0,
    connect_time: ms(r.connectedAt),
    exit_time: ms(r.exitedAt),
    exit_code: r.exitCode ?? null,
    signal: r.exitSignal ?? null,
    error: r.error ?? null,
    instance_id: r.instanceId ?? null,
    hostname: null,
  };
}

export interface LiveStateDeps {
  runner: Runner;
  logBuffer: LogBuffer;
  nodeKeys: NodeKeyStore;
  /** Ids that came from the config file (the rest were enrolled at runtime). */
  configIds: ReadonlySet<string>;
  hostname: string;
  /** The configured device server (a registration's own URL when the backend moved it). */
  defaultDeviceUrl: string;
  /** A registration's device standing from its tracker; undefined before its first run. */
  deviceState?: (id: string, enrolled: boolean, disabled: boolean) => DeviceState | undefined;
  /** The latest self-checkups (src/app/checkups.ts); none when they are off. */
  checkups?: () => CheckupState[];
  /** issue 17: the update service's rows (absent: no rows). */
  updates?: (ids: readonly string[]) => UpdateState[];
  /** Query quarantine (issue 16); no rows without it. */
  quarantine?: QuarantineStore;
}

/** What `ctl quarantine release` takes for an entry: a scheduled query's name, else its SQL hash's first 12 hex digits. */
export function releaseHandleOf(e: Pick<QuarantineEntry, 'kind' | 'name' | 'sqlHash'>): string {
  return e.kind === 'scheduled' && e.name !== '' ? e.name : e.sqlHash.slice(0, 12);
}

export function toQuarantineState(e: QuarantineEntry): QuarantineState {
  return {
    registration_id: e.registrationId,
    kind: e.kind,
    name: e.name,
    sql_hash: e.sqlHash,
    sql: e.sql,
    query_id: e.queryId,
    reason: e.reason,
    incidents: e.incidents,
    quarantined_at: e.quarantinedAt,
    expires_at: e.expiresAt,
    release_handle: releaseHandleOf(e),
  };
}

export class LiveState implements StateSource {
  constructor(private readonly d: LiveStateDeps) {}

  checkups(): CheckupState[] {
    return this.d.checkups?.() ?? [];
  }

  private pick<T extends { id: string }>(items: T[], ids?: readonly string[]): T[] {
    return ids ? items.filter((i) => ids.includes(i.id)) : items;
  }

  /** Device standing and URL of a registration (issue 15): beside `healthy`, never folded into it. */
  private device(id: string, reg: Registration | undefined): { device: DeviceState; device_url: string } {
    const enrolled = this.d.nodeKeys.getNodeKey(id) !== undefined;
    const disabled = reg?.disabledReason !== undefined;
    const device = this.d.deviceState?.(id, enrolled, disabled) ?? {
      state: disabled ? ('disabled' as const) : enrolled ? ('enrolled' as const) : ('enrolling' as const),
      error: null,
      since: null,
    };
    return { device, device_url: reg?.deployment?.deviceUrl ?? this.d.defaultDeviceUrl };
  }

  registrations(ids?: readonly string[]): RegistrationState[] {
    return this.pick(this.d.runner.registrationsList(), ids).map((r: Registration) => ({
      id: r.id,
      enroll_secret_source: r.enrollSecret ? 'value' : r.enrollSecretPath ? 'file' : 'none',
      enroll_secret_path: r.enrollSecretPath ?? null,
      limits: limitsToWire(r.limits),
      osquery_flags: r.osqueryFlags,
      created_at: ms(r.createdAt),
      origin: this.d.configIds.has(r.id) ? 'config' : 'runtime',
      enrolled: this.d.nodeKeys.getNodeKey(r.id) !== undefined,
      disabled: r.disabledReason !== undefined,
      ...this.device(r.id, r),
    }));
  }

  instance(s: RegistrationStatus, regs?: ReadonlyMap<string, Registration>): InstanceInfo {
    const b = this.d.logBuffer.statsFor(s.id);
    const reg = regs ? regs.get(s.id) : this.d.runner.registrationsList().find((r) => r.id === s.id);
    return {
      id: s.id,
      state: s.state,
      pid: s.pid,
      run_id: s.run_id,
      started_at: s.started_at,
      connected_at: s.connected_at,
      uptime_seconds: s.uptime_seconds,
      healthy: s.healthy,
      restarts: s.restarts,
      last_error: s.last_error,
      limits: { memory_mb: s.limits.memory_mb, cpu_percent: s.limits.cpu_percent, mode: s.limits.mode },
      isolation: {
        mode: s.isolation?.mode ?? '',
        reason: s.isolation?.reason ?? null,
        disabled_tables: (s.isolation?.disabled_tables ?? []).join(','),
      },
      buffers: {
        result_count: b.result.count,
        status_count: b.status.count,
        bytes: b.result.bytes + b.status.bytes,
        dropped: b.result.dropped + b.status.dropped,
      },
      osqueryd_path: s.osqueryd_path || null,
      osqueryd_version: s.osqueryd_version,
      ...this.device(s.id, reg),
    };
  }

  instances(ids?: readonly string[]): InstanceInfo[] {
    // State readers skip the extension's own status (it reads SQLite) and read only the ids asked for.
    const lite = { extension: false };
    const regs = new Map(this.d.runner.registrationsList().map((r) => [r.id, r]));
    if (!ids) return this.d.runner.status(lite).map((s) => this.instance(s, regs));
    return ids.filter(isRegistrationId).flatMap((id) => {
      try {
        return [this.instance(this.d.runner.statusOf(id, lite), regs)];
      } catch {
        return []; // unknown or invalid id: no row
      }
    });
  }

  history(ids?: readonly string[], limit = 20): RunRecord[] {
    const regIds = ids ?? this.d.runner.registrationsList().map((r) => r.id);
    return regIds.filter(isRegistrationId).flatMap((id) => {
      try {
        return this.d.runner.history(id, limit).map((r) => ({ ...toRunRecord(r), hostname: this.d.hostname }));
      } catch {
        return [];
      }
    });
  }

  quarantine(ids?: readonly string[]): QuarantineState[] {
    if (!this.d.quarantine) return [];
    const regIds = ids ?? this.d.runner.registrationsList().map((r) => r.id);
    return this.d.quarantine.list(regIds).map(toQuarantineState);
  }

  logBuffers(ids?: readonly string[]): LogBufferState[] {
    const regIds = ids ?? this.d.runner.registrationsList().map((r) => r.id);
    return regIds.flatMap((id) => {
      const s = this.d.logBuffer.statsFor(id);
      return (['result', 'status'] as const).map((kind) => ({
        registration_id: id,
        log_type: kind,
        count: s[kind].count,
        bytes: s[kind].bytes,
        dropped: s[kind].dropped,
        oldest_age_seconds: s[kind].oldestAgeMs === undefined ? null : Math.floor(s[kind].oldestAgeMs / 1000),
      }));
    });
  }

  updates(ids?: readonly string[]): UpdateState[] {
    return this.d.updates?.(ids ?? this.d.runner.registrationsList().map((r) => r.id)) ?? [];
  }
}
