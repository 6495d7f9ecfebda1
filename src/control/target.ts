/**
 * What the control server needs from the supervisor. The runtime implements
 * this interface; the server never reaches into the runtime otherwise.
 *
 * Conventions: times are Unix epoch milliseconds, `null` means "not known /
 * not applicable". Methods throw `LauncherError` with E_NOT_FOUND (unknown
 * registration), E_ALREADY_EXISTS, E_INVALID_REGISTRATION_ID,
 * E_INVALID_ARGUMENT or E_TIMEOUT; the server maps those to gRPC status codes
 * (src/control/status.ts). Authorization is the server's job: the target
 * trusts every call it receives.
 *
 * It imports only src/state's types, so both src/runtime and src/control can
 * depend on it without crossing layers; `OutputSource` is the structural
 * shape of src/runtime/instance/output-ring.ts's `OutputRing`.
 */

// The typed state objects are defined once, in src/state/types.ts, and shared
// with the state tables (issue 7): the API sends the same rows osquery sees.
export type {
  LimitMode,
  Limits,
  LimitsInForce,
  BufferStats,
  InstanceInfo,
  RunRecord,
  DeviceState,
  QuarantineState,
} from '../state/types.js';
import type { DeviceState, InstanceInfo, Limits, QuarantineState, RunRecord } from '../state/types.js';
import type { RegistrationId } from '../registration.js';

export interface VersionInfo {
  serverVersion: string;
  apiVersion: string;
  /** Extra feature names the runtime supports; the server adds its own. */
  features: string[];
}

export interface HealthInfo {
  healthy: boolean;
  /** `device` beside `healthy`: a registration can be healthy (osqueryd and extension fine) and failing to enroll. */
  instances: Array<{ id: string; healthy: boolean; state: string; device?: DeviceState }>;
}

export interface AddRegistrationInput {
  id: string;
  /** Exactly one of `enrollSecret` and `enrollSecretPath` is set. */
  enrollSecret?: string;
  enrollSecretPath?: string;
  limits?: Limits;
  osqueryFlags?: string[];
  /** Re-enroll an existing registration (new secret, limits, flags); only its osqueryd restarts. */
  replace?: boolean;
  /** issue 22: filesystem isolation and table denylist; absent fields take the defaults. */
  isolation?: { mode?: string; disable_tables?: string[] };
}

/** Structural view of `OutputRing` (src/runtime/instance/output-ring.ts). */
export interface OutputSource {
  readonly runId: string;
  readonly closed: boolean;
  subscribe(options?: { from?: 'beginning' | 'now' | number; follow?: boolean; signal?: AbortSignal }): AsyncIterableIterator<{
    readonly seq: number;
    readonly stream: 'stdout' | 'stderr';
    readonly text: string;
    readonly time: number;
    readonly missed: number;
  }>;
}

export interface ControlTarget {
  version(): VersionInfo;
  health(): HealthInfo;
  listInstances(): InstanceInfo[];
  getInstance(id: RegistrationId): InstanceInfo | undefined;
  addRegistration(req: AddRegistrationInput): Promise<InstanceInfo>;
  removeRegistration(id: RegistrationId): Promise<void>;
  restartInstance(id: RegistrationId): Promise<InstanceInfo>;
  query(id: RegistrationId, sql: string, timeoutMs: number): Promise<Array<Record<string, string>>>;
  /** Runs of a registration, newest first, at most `limit`. */
  history(id: RegistrationId, limit: number): RunRecord[];
  /** The current run's output, or undefined when no run has started. */
  output(id: RegistrationId): OutputSource | undefined;
  /** Quarantined queries of these registrations (all when undefined), issue 16. */
  listQuarantine(ids: readonly string[] | undefined): QuarantineState[];
  /** Release a registration's quarantined query (name, SQL hash or prefix, or SQL); E_NOT_FOUND when none matches. */
  releaseQuarantine(id: RegistrationId, query: string): Promise<QuarantineState[]>;
  /** issue 17: osqueryd updates (absent on targets without an update service). */
  update?: UpdateControl;
}

/**
 * issue 17: the host's osqueryd update status (the app passes the update
 * service's own status, which has this shape). Times are RFC 3339 strings as
 * the update store keeps them; the mapping converts.
 */
export interface UpdateStatusInfo {
  enabled: boolean;
  channel: string | null;
  metadataUrl: string | null;
  lastCheck: { at: string; result: string; error: string | null; available: string | null } | null;
  rollout: {
    version: string;
    state: string;
    canary: string;
    order: string[];
    done: string[];
    current: string | null;
    startedAt: string;
    updatedAt: string;
    detail: string | null;
  } | null;
  instances: Array<{
    registrationId: string;
    runningVersion: string | null;
    assignedVersion: string | null;
    previousVersion: string | null;
    pinnedVersion: string | null;
    pinSource: string | null;
    pendingVersion: string | null;
  }>;
  installedVersions: string[];
  badVersions: Array<{ version: string; reason: string }>;
}

/** issue 17: what the update rpcs need; a target without them answers E_UNSUPPORTED. */
export interface UpdateControl {
  /** `ids` undefined: every registration (admin); else only those (the caller's own). */
  updateStatus(ids: readonly string[] | undefined): UpdateStatusInfo;
  checkUpdate(): Promise<UpdateStatusInfo>;
  pinVersion(id: string, version: string | undefined): Promise<UpdateStatusInfo>;
  unpinVersion(id: string): Promise<UpdateStatusInfo>;
}
