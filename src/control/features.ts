/**
 * API version and the feature names GetVersion announces. A client checks a
 * feature before using it and degrades (with a clear message) when an older
 * server lacks it. Names are add-only, like the .proto (adr/0003).
 */
/** The one control API version (the `v1` of proto package launcher.v1), sent in GetVersion. */
export const API_VERSION = 'v1';

export const FEATURES = {
  health: 'health',
  instances: 'instances',
  registrations: 'registrations',
  restart: 'restart',
  query: 'query',
  history: 'history',
  streamOutput: 'stream-output',
  streamOutputFollow: 'stream-output-follow',
  /** The standard grpc.health.v1.Health service beside launcher.v1 (issue 18; health.ts). */
  grpcHealth: 'grpc-health',
  /** issue 17: GetUpdateStatus, CheckUpdate, PinVersion, UnpinVersion. */
  osquerydUpdate: 'osqueryd-update',
  /** ListQuarantine and ReleaseQuarantine (issue 16). */
  quarantine: 'quarantine',
} as const;

export type FeatureName = (typeof FEATURES)[keyof typeof FEATURES];

/** Everything this server implements. */
export const SERVER_FEATURES: readonly string[] = Object.values(FEATURES);
