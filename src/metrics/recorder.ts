/**
 * What the hot paths tell the metrics module (issue 18), as plain calls with
 * bounded label values. This file has no dependencies: the app, the device
 * client's observer and the plugin wrappers call a `MetricsRecorder` only
 * when metrics are enabled, so an idle supervisor without metrics never loads
 * prom-client (ADR 0019). Everything else is read on scrape from existing
 * state (src/metrics/source.ts).
 */

export type LogTypeLabel = 'result' | 'status';

export interface MetricsRecorder {
  /** One osqueryd → extension plugin call (plugin dispatch level), how long it took, whether it threw. */
  extensionCall(registration: string, plugin: string, seconds: number, ok: boolean): void;
  /** Distributed queries handed to osqueryd (getQueries) and answered by it (writeResults). */
  distributedQueries(registration: string, handedOut: number, answered: number): void;
  /** One PublishLogs batch of a registration, acknowledged by the server or not. */
  publish(registration: string, logType: LogTypeLabel, ok: boolean): void;
  /** One logical device client call (retries included), its outcome (`ok`, `aborted` or an error code), its duration. */
  deviceCall(method: string, outcome: string, seconds: number): void;
  /** One control API call: method name and the gRPC status code name it ended with. */
  controlCall(method: string, code: string): void;
}

/** A collect-on-scrape series another subsystem adds (e.g. self-checkups): a gauge read when scraped. */
export interface GaugeCollector {
  /** `launcher_<something>`: [a-z_][a-z0-9_]*. */
  name: string;
  help: string;
  /** Label names; every sample sets each of them. Values must come from a bounded set. */
  labelNames: readonly string[];
  collect(): Array<{ labels: Record<string, string>; value: number }> | Promise<Array<{ labels: Record<string, string>; value: number }>>;
}

/** The registry API subsystems use: add a gauge collector (before or after the endpoint starts). */
export interface MetricsRegistry {
  addGauge(collector: GaugeCollector): void;
}
