/**
 * Runtime state of one extension that status() reports and every part of
 * the extension updates: lifecycle, disable flag, last error, counters.
 */
import type { LogBufferStats, LogKind } from '../../src/store/log-buffer.js';
import { errorMessage, isLauncherError } from '../../src/errors.js';
import type { DeviceState } from '../../src/state/types.js';

export interface LastError {
  /** What was being done: enroll, config, publish_status, publish_result, queries, results. */
  operation: string;
  code: string | undefined;
  message: string;
  /** ms since epoch. */
  at: number;
}

export interface KolideExtensionStatus {
  registrationId: string;
  hostIdentifier: string;
  started: boolean;
  stopped: boolean;
  /** A node key is stored and the device is not disabled. */
  enrolled: boolean;
  /** Standing with the device server (device-state.ts). */
  device: DeviceState;
  /** The device server this registration talks to. */
  deviceUrl: string;
  nodeKeyPresent: boolean;
  /** The server answered disable_device for this registration. */
  disabled: boolean;
  enrollments: number;
  reenrollments: number;
  lastError: LastError | undefined;
  /** ms since epoch of the last acknowledged PublishLogs. */
  lastPublishAt: number | undefined;
  /** Where the last genConfig answer came from. */
  lastConfigSource: 'server' | 'cache' | 'empty' | undefined;
  publishedLogs: Record<LogKind, number>;
  /** Current adaptive batch limit (bytes). */
  batchLimitBytes: number;
  /** PublishLogs calls made, consecutive failed ticks, and the longest next wait (issue 19). */
  publish: { attempts: number; failures: number; backoffMs: number; limitLowered: number; limitRaised: number };
  buffers: Record<LogKind, LogBufferStats>;
  /** Query quarantine of this run (issue 16): on or off, distributed queries handed out and not yet answered. */
  quarantine?: { enabled: boolean; inFlight: number };
}

export class ExtensionState {
  started = false;
  stopped = false;
  disabled = false;
  enrollments = 0;
  reenrollments = 0;
  lastError: LastError | undefined;
  lastPublishAt: number | undefined;
  lastConfigSource: KolideExtensionStatus['lastConfigSource'];
  readonly publishedLogs: Record<LogKind, number> = { status: 0, result: 0 };
  /** Aborted by stop() and on disable: cancels in-flight device calls of this registration. */
  readonly abort = new AbortController();

  recordError(operation: string, err: unknown): void {
    // Calls cut short by stop() are not failures worth reporting.
    if (this.stopped && isLauncherError(err, 'E_SHUTDOWN')) return;
    this.lastError = { operation, code: isLauncherError(err) ? err.code : undefined, message: errorMessage(err), at: Date.now() };
  }

  /** Loops and calls keep going only while this is true. */
  get active(): boolean {
    return !this.stopped && !this.disabled;
  }
}
