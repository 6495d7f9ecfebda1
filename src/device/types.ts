/**
 * Typed params and results of the six JSON-RPC methods of Kolide's device
 * protocol (docs/protocol/device.md#methods). Params are what callers pass; the wire keys and
 * their order are fixed by `encode.ts`. Results are the decoded, zero-filled
 * values (Go semantics: a missing key is false / "" / 0).
 */

export type DeviceMethod = 'RequestEnrollment' | 'RequestConfig' | 'PublishLogs' | 'RequestQueries' | 'PublishResults' | 'CheckHealth';

export const DEVICE_METHODS: readonly DeviceMethod[] = [
  'RequestEnrollment',
  'RequestConfig',
  'PublishLogs',
  'RequestQueries',
  'PublishResults',
  'CheckHealth',
];

/** The 17 enrollment-detail keys, in the order launcher sends them. */
export const ENROLLMENT_DETAIL_KEYS = [
  'os_version',
  'os_build_id',
  'os_platform',
  'hostname',
  'hardware_vendor',
  'hardware_model',
  'hardware_serial',
  'osquery_version',
  'launcher_hardware_key',
  'launcher_hardware_key_source',
  'launcher_local_key',
  'launcher_version',
  'os_name',
  'os_platform_like',
  'goos',
  'goarch',
  'hardware_uuid',
] as const;

export type EnrollmentDetailKey = (typeof ENROLLMENT_DETAIL_KEYS)[number];
export type EnrollmentDetails = Record<EnrollmentDetailKey, string>;

/** osquery log types as the protocol numbers them; only 0 and 4 are sent. */
export const LogType = { STRING: 0, SNAPSHOT: 1, HEALTH: 2, INIT: 3, STATUS: 4 } as const;
export type LogTypeNumber = (typeof LogType)[keyof typeof LogType];

export interface EnrollmentParams {
  enrollSecret: string;
  hostIdentifier: string;
  /** Missing keys are sent as "". */
  details: Partial<EnrollmentDetails>;
}

export interface DeploymentUrls {
  enrollmentUrl: string;
  controlServerUrl: string;
  osqueryPublisherUrl: string;
}

/** Flags every result except CheckHealth carries. */
export interface DeviceFlags {
  nodeInvalid: boolean;
  disableDevice: boolean;
  errorCode: string;
}

export interface EnrollmentResult extends DeviceFlags {
  nodeKey: string;
  wrongRegion: boolean;
  deploymentUrls: DeploymentUrls | undefined;
  agentIngesterAuthToken: string;
  agentIngesterHpkePublicKey: string;
  agentIngesterHpkePsk: string;
}

export interface ConfigResult extends DeviceFlags {
  /** The osquery config as JSON text (the wire carries it as a string). */
  config: string;
}

export interface PublishResult extends DeviceFlags {
  message: string;
}

export interface DeviceQueries {
  queries: Record<string, string>;
  discovery: Record<string, string> | undefined;
  accelerate: number;
}

export interface QueriesResult extends DeviceFlags {
  queries: DeviceQueries;
}

export interface HealthResult {
  status: number;
  errorCode: string;
}

export interface QueryStats {
  wall_time_ms: number;
  user_time: number;
  system_time: number;
  memory: number;
}

/** One `Results` element of PublishResults. */
export interface DistributedQueryResult {
  query_name: string;
  status: number;
  /** null when osquery sent an empty array (osquery-go quirk). */
  rows: Record<string, string>[] | null;
  stats: QueryStats | null;
  message: string;
}
