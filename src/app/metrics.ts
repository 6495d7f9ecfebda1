/**
 * Metrics wiring of the app (issue 18, ADR 0019). Nothing here loads
 * prom-client or OpenTelemetry: `MetricsWiring.start()` imports
 * src/metrics/prometheus.js (and src/metrics/otlp.js when `otlp_url` is set)
 * dynamically, so a supervisor without `metrics` in its config never has
 * them in memory. Before start() resolves (and between failed attempts), the recorder drops what it is told.
 */
import type { LauncherConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { LauncherMetrics } from '../metrics/prometheus.js';
import type { OtlpPush } from '../metrics/otlp.js';
import type { GaugeCollector, MetricsRecorder, MetricsRegistry } from '../metrics/recorder.js';
import type { MetricsServer } from '../metrics/server.js';
import type { MetricsSource, RegistrationSample } from '../metrics/source.js';
import type { LogBuffer } from '../store/log-buffer.js';
import type { InstanceInfo } from '../state/types.js';

export function metricsEnabled(cfg: LauncherConfig): boolean {
  return cfg.metrics.listen !== undefined || cfg.metrics.otlp_url !== undefined;
}

/** The app's registrations as metrics samples, read on each scrape. */
export function metricsSource(instances: () => InstanceInfo[], logBuffer: LogBuffer): MetricsSource {
  return {
    registrations: (): RegistrationSample[] =>
      instances().map((i) => {
        const b = logBuffer.statsFor(i.id);
        return {
          id: i.id,
          state: i.state,
          healthy: i.healthy,
          device: i.device.state,
          restarts: i.restarts,
          uptimeSeconds: i.uptime_seconds,
          pid: i.pid,
          limitsMode: i.limits.mode,
          buffers: {
            result: { count: b.result.count, bytes: b.result.bytes, dropped: b.result.dropped },
            status: { count: b.status.count, bytes: b.status.bytes, dropped: b.status.dropped },
          },
        };
      }),
  };
}

export class MetricsWiring implements MetricsRegistry {
  private metrics: LauncherMetrics | undefined;
  private server: MetricsServer | undefined;
  private otlp: OtlpPush | undefined;
  /** Every collector added, so a start() retried after a failed listen registers them again. */
  private readonly collectors: GaugeCollector[] = [];
  /** stop() was called: a start() still loading modules gives up instead of listening after the stop. */
  private stopped = false;

  /** Forwards to the loaded metrics; a no-op until start() has loaded them. */
  readonly recorder: MetricsRecorder = {
    extensionCall: (r, p, s, ok) => this.metrics?.recorder.extensionCall(r, p, s, ok),
    distributedQueries: (r, a, b) => this.metrics?.recorder.distributedQueries(r, a, b),
    publish: (r, t, ok) => this.metrics?.recorder.publish(r, t, ok),
    deviceCall: (m, o, s) => this.metrics?.recorder.deviceCall(m, o, s),
    controlCall: (m, c) => this.metrics?.recorder.controlCall(m, c),
  };

  constructor(
    private readonly cfg: LauncherConfig['metrics'],
    private readonly version: string,
    private readonly log: Logger,
  ) {}

  /** Where the endpoint listens (`http://127.0.0.1:PORT/metrics` or `unix:///path`), once started. */
  get url(): string | undefined {
    return this.server?.url;
  }

  /** Add a collect-on-scrape gauge (e.g. self-checkups); kept until the metrics are loaded. */
  addGauge(c: GaugeCollector): void {
    this.collectors.push(c);
    if (this.metrics) this.metrics.addGauge(c);
  }

  /** Load the metrics module, start the endpoint and the OTLP push as configured. E_CONFIG when it cannot listen. */
  async start(source: MetricsSource): Promise<void> {
    const { createLauncherMetrics } = await import('../metrics/prometheus.js');
    if (this.stopped) return;
    const metrics = createLauncherMetrics({ source, version: this.version });
    for (const c of this.collectors) {
      try {
        metrics.addGauge(c);
      } catch (err) {
        // A subsystem's bad collector must not stop the supervisor: it is left out, loudly.
        this.log.error({ collector: c.name, err: errorMessage(err) }, 'metrics collector refused');
      }
    }
    this.metrics = metrics;
    try {
      if (this.cfg.listen !== undefined) {
        const { startMetricsServer } = await import('../metrics/server.js');
        this.server = await startMetricsServer({
          listen: this.cfg.listen,
          render: () => metrics.render(),
          onError: (err) => this.log.warn({ err: errorMessage(err) }, 'metrics scrape failed'),
        });
        if (this.stopped) {
          await this.stop();
          return;
        }
        this.log.info({ url: this.server.url }, 'metrics endpoint listening');
      }
      if (this.cfg.otlp_url !== undefined) {
        const { startOtlpPush } = await import('../metrics/otlp.js');
        if (this.stopped) {
          await this.stop();
          return;
        }
        this.otlp = startOtlpPush({
          registry: metrics.registry,
          url: this.cfg.otlp_url,
          intervalMs: this.cfg.otlp_interval_seconds * 1000,
          version: this.version,
          onError: (err) => this.log.warn({ err: errorMessage(err) }, 'OTLP metrics export failed'),
        });
        // The URL may carry credentials in its user part: log the origin only.
        this.log.info({ otlp: new URL(this.cfg.otlp_url).origin }, 'pushing metrics over OTLP');
      }
    } catch (err) {
      // Undo this attempt only: start() may be called again (the app retries a failed listen).
      await this.teardown();
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.teardown();
  }

  private async teardown(): Promise<void> {
    await this.otlp?.close();
    await this.server?.close();
    this.metrics?.close();
    this.metrics = undefined;
    this.otlp = undefined;
    this.server = undefined;
  }
}
