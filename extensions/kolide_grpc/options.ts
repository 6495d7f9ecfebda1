/**
 * Options of one kolide_grpc extension (one per osquery instance) and their
 * defaults (docs/protocol/device.md#extension).
 */
import type { DeviceClient, EnrollmentDetails } from '../../src/device/index.js';
import type { SqliteDatabase } from '../../src/store/database.js';
import type { Logger } from '../../src/log/logger.js';
import { silentLogger } from '../../src/log/logger.js';
import { LauncherError, errorMessage } from '../../src/errors.js';
import { validateRegistrationId } from '../../src/store/registrations.js';
import { DEFAULT_DETAILS_TIMINGS, type DetailsTimings, type OsqueryQuery } from './details.js';
import { DeviceStateTracker } from './device-state.js';
import type { PublishGate } from './publish-gate.js';
import { DEFAULT_QUARANTINE_POLICY } from '../../src/store/quarantine.js';
import type { QuarantineSettings } from './quarantine.js';
import type { RegistrationId } from '../../src/registration.js';

/** Who we are, for `kolide_launcher_info` and the enrollment details. */
export interface LauncherIdentity {
  version: string;
  revision?: string;
  branch?: string;
  buildDate?: string;
  buildUser?: string;
  /** Colon-joined versions across re-execs. */
  versionChain?: string;
  /** The latest osquery instance id of this registration, when known. */
  osqueryInstanceId?: () => string | undefined;
  localKey?: string;
  hardwareKey?: string;
  hardwareKeySource?: string;
  signingKey?: string;
  signingKeySource?: string;
}

export interface KolideExtensionOptions {
  /** The tenant slot this instance serves ("default" for the vendor). */
  registrationId: RegistrationId;
  /** Enroll secret value; takes priority over the file. Setting both is an error. */
  enrollSecret?: string;
  /** File holding the enroll secret (whitespace trimmed). */
  enrollSecretPath?: string;
  /** The supervisor's shared device client. */
  client: DeviceClient;
  /** The supervisor's SQLite database (node keys, config cache, log buffers). */
  db: SqliteDatabase;
  logger?: Logger;
  /** Log publication interval (ms). Default 60 000. */
  publishIntervalMs?: number;
  /** Largest PublishLogs batch, and largest single log (bytes). Default 3 MiB. */
  maxBytesPerBatch?: number;
  /** Per-buffer cap (entries); the oldest are dropped beyond it. Default 500 000. */
  bufferCap?: number;
  /** All log buffers together (bytes); the oldest go first, fairly across registrations. Default 512 MiB. */
  bufferMaxTotalBytes?: number;
  /** Lower/raise the batch limit after slow failures / full batches (docs/protocol/device.md#batch-limit). Default true. */
  adaptiveBatchLimit?: boolean;
  /** Batches sent per log type per tick while batches come out full. Default 1 (launcher). */
  maxBatchesPerTick?: number;
  /** A PublishLogs at least this slow lowers the batch limit. Default 20 000 ms (launcher). */
  slowPublishMs?: number;
  /** Longest wait between ticks while publishes fail. Default 32 intervals, at most 10 min. */
  publishBackoffMaxMs?: number;
  /** Limits the batches built or sent at once; shared by every extension of the process by default. */
  publishGate?: PublishGate;
  /** Minimum time between forwarded RequestQueries (ms). Default 60 000. */
  distributedForwardingIntervalMs?: number;
  /** Everything is forwarded this long after start (ms). Default 120 000. */
  distributedStartupWindowMs?: number;
  /** Enrollment details; missing keys get runtime defaults or "". */
  enrollmentDetails?: Partial<EnrollmentDetails>;
  identity?: LauncherIdentity;
  /** Called once when the server answers disable_device for this registration. */
  onDisableDevice?: (registrationId: RegistrationId) => void;
  /** Uptime of this registration's osquery instance, for the config `verbose` rule. */
  getUptimeSeconds?: () => number | undefined;
  /** `verbose` stays true until the instance has been up this long (s). Default 600. */
  verboseUptimeSeconds?: number;
  /** SQL through this instance's osqueryd once its manager answers: the OS and hardware enrollment details (issue 15). */
  osqueryQuery?: OsqueryQuery;
  detailsTimings?: Partial<DetailsTimings>;
  /** This registration's device standing, kept across runs by the caller; default a fresh one. */
  deviceState?: DeviceStateTracker;
  /** Told after each PublishLogs batch whether the server acknowledged it (metrics, issue 18). Must not throw. */
  onPublish?: (kind: 'result' | 'status', ok: boolean) => void;
  /** Query quarantine (issue 16); default on, 2 incidents in 24 h, 7 days, 120 s deadline. */
  quarantine?: Partial<QuarantineSettings>;
  /** End this extension's run (the instance's ExtensionContext.endRun); a query past its deadline needs it. */
  endRun?: (reason: Error) => void;
}

export interface ResolvedOptions
  extends Required<
    Omit<
      KolideExtensionOptions,
      | 'enrollSecret'
      | 'enrollSecretPath'
      | 'onDisableDevice'
      | 'getUptimeSeconds'
      | 'identity'
      | 'enrollmentDetails'
      | 'osqueryQuery'
      | 'detailsTimings'
      | 'slowPublishMs'
      | 'publishBackoffMaxMs'
      | 'publishGate'
      | 'onPublish'
      | 'quarantine'
      | 'endRun'
    >
  > {
  onPublish: ((kind: 'result' | 'status', ok: boolean) => void) | undefined;
  quarantine: QuarantineSettings;
  endRun: ((reason: Error) => void) | undefined;
  slowPublishMs: number | undefined;
  publishBackoffMaxMs: number | undefined;
  publishGate: PublishGate | undefined;
  osqueryQuery: OsqueryQuery | undefined;
  detailsTimings: DetailsTimings;
  enrollSecret: string | undefined;
  enrollSecretPath: string | undefined;
  onDisableDevice: (registrationId: RegistrationId) => void;
  getUptimeSeconds: () => number | undefined;
  identity: LauncherIdentity;
  enrollmentDetails: Partial<EnrollmentDetails>;
}

export const DEFAULT_MAX_BYTES_PER_BATCH = 3 * 1024 * 1024;

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0)
    throw new LauncherError('E_INVALID_ARGUMENT', `kolide_grpc option ${name} must be a positive number, got ${value}`);
  return value;
}

export function resolveOptions(o: KolideExtensionOptions): ResolvedOptions {
  // The same rule as everywhere else: the id ends up in file paths and store keys.
  try {
    validateRegistrationId(o.registrationId);
  } catch (err) {
    throw new LauncherError('E_INVALID_REGISTRATION_ID', `kolide_grpc: ${errorMessage(err)}`, { cause: err });
  }
  if (o.enrollSecret !== undefined && o.enrollSecretPath !== undefined) {
    throw new LauncherError('E_CONFIG', `kolide_grpc ${o.registrationId}: set enrollSecret or enrollSecretPath, not both`);
  }
  return {
    registrationId: o.registrationId,
    enrollSecret: o.enrollSecret,
    enrollSecretPath: o.enrollSecretPath,
    client: o.client,
    db: o.db,
    logger: o.logger ?? silentLogger(),
    publishIntervalMs: positive('publishIntervalMs', o.publishIntervalMs, 60_000),
    maxBytesPerBatch: positive('maxBytesPerBatch', o.maxBytesPerBatch, DEFAULT_MAX_BYTES_PER_BATCH),
    bufferCap: positive('bufferCap', o.bufferCap, 500_000),
    bufferMaxTotalBytes: positive('bufferMaxTotalBytes', o.bufferMaxTotalBytes, 512 * 1024 * 1024),
    adaptiveBatchLimit: o.adaptiveBatchLimit ?? true,
    maxBatchesPerTick: positive('maxBatchesPerTick', o.maxBatchesPerTick, 1),
    slowPublishMs: o.slowPublishMs === undefined ? undefined : positive('slowPublishMs', o.slowPublishMs, 0),
    publishBackoffMaxMs: o.publishBackoffMaxMs === undefined ? undefined : positive('publishBackoffMaxMs', o.publishBackoffMaxMs, 0),
    publishGate: o.publishGate,
    onPublish: o.onPublish,
    distributedForwardingIntervalMs: positive('distributedForwardingIntervalMs', o.distributedForwardingIntervalMs, 60_000),
    distributedStartupWindowMs: o.distributedStartupWindowMs ?? 120_000,
    enrollmentDetails: o.enrollmentDetails ?? {},
    identity: o.identity ?? { version: '' },
    onDisableDevice: o.onDisableDevice ?? (() => undefined),
    getUptimeSeconds: o.getUptimeSeconds ?? (() => undefined),
    verboseUptimeSeconds: o.verboseUptimeSeconds ?? 600,
    osqueryQuery: o.osqueryQuery,
    detailsTimings: { ...DEFAULT_DETAILS_TIMINGS, ...o.detailsTimings },
    deviceState: o.deviceState ?? new DeviceStateTracker(),
    quarantine: {
      enabled: o.quarantine?.enabled ?? true,
      policy: { ...DEFAULT_QUARANTINE_POLICY, ...o.quarantine?.policy },
      queryTimeoutMs: positive('quarantine.queryTimeoutMs', o.quarantine?.queryTimeoutMs, 120_000),
    },
    endRun: o.endRun,
  };
}
