/**
 * The options of one supervisor, derived once from the validated config
 * (issue 21): what the Runner is built with (and passes whole to every
 * supervision loop and instance) and what every run's extension gets. Test
 * and demo seams are merged here too, so the composition root
 * (launcher-app.ts) copies nothing field by field. A new timing is its config
 * key, one line here and its default where it is used.
 */
import { resolve } from 'node:path';
import type { LauncherConfig } from '../config/schema.js';
import type { RunnerOptions } from '../runtime/runner.js';
import { tlsServerCertsPath } from '../runtime/instance/flags.js';
import type { DetailsTimings, KolideExtensionOptions } from '../../extensions/kolide_grpc/index.js';

/** Seams for tests and the demo: faster timings, fault injection. */
export type RunnerSeams = Pick<RunnerOptions, 'timings' | 'flagTimings' | 'backoff' | 'instanceEnv' | 'limits'>;
export interface ExtensionSeams {
  distributedStartupWindowMs?: number;
  detailsTimings?: Partial<DetailsTimings>;
}

/** The Runner's options that come from the config (the app adds the binary, the extension factory, the store, the logger). */
export type RunnerSettings = Omit<RunnerOptions, 'osquerydPath' | 'extensionFactory' | 'db' | 'logger'>;
/** What every run's extension gets from the config (the factory adds what belongs to the run). */
export type ExtensionSettings = Pick<
  KolideExtensionOptions,
  | 'publishIntervalMs'
  | 'maxBytesPerBatch'
  | 'bufferCap'
  | 'bufferMaxTotalBytes'
  | 'distributedForwardingIntervalMs'
  | 'distributedStartupWindowMs'
  | 'detailsTimings'
  | 'quarantine'
>;

export interface LauncherOptions {
  runner: RunnerSettings;
  extension: ExtensionSettings;
}

export function launcherOptions(
  cfg: LauncherConfig,
  seams: { runner?: RunnerSeams; extension?: ExtensionSeams; vendorId?: string } = {},
): LauncherOptions {
  const runner: RunnerSettings = {
    ...seams.runner,
    root: cfg.root_directory,
    vendorId: seams.vendorId ?? cfg.registrations[0]?.id ?? 'kolide',
    isolationHost:
      cfg.isolation_namespaces === 'off' ? { unavailableReason: 'isolation_namespaces is off in the configuration' } : undefined,
    outputCapacity: cfg.output_ring_lines,
    tlsServerCerts: tlsServerCertsPath(cfg.device_server.root_pem ? resolve(cfg.device_server.root_pem) : undefined),
    timings: {
      healthIntervalMs: cfg.health.interval_seconds * 1000,
      healthStartupDelayMs: cfg.health.startup_delay_seconds * 1000,
      healthMaxFailures: cfg.health.failures,
      ...seams.runner?.timings,
    },
  };
  const extension: ExtensionSettings = {
    publishIntervalMs: cfg.log_buffer.publish_interval_seconds * 1000,
    maxBytesPerBatch: cfg.log_buffer.max_bytes_per_batch,
    bufferCap: cfg.log_buffer.max_entries,
    bufferMaxTotalBytes: cfg.log_buffer.max_total_bytes,
    distributedForwardingIntervalMs: cfg.distributed_forwarding_interval_seconds * 1000,
    quarantine: {
      enabled: cfg.quarantine.enabled,
      queryTimeoutMs: cfg.quarantine.query_timeout_seconds * 1000,
      policy: {
        incidents: cfg.quarantine.incidents,
        windowMs: cfg.quarantine.window_hours * 3600_000,
        ttlMs: cfg.quarantine.ttl_days * 86_400_000,
      },
    },
    ...seams.extension,
  };
  return { runner, extension };
}
