/**
 * Optional OTLP push of the same metrics (issue 18, ADR 0019): the
 * prom-client registry stays the one source, and an OpenTelemetry
 * MetricProducer turns each collection of it into OTel metric data, which
 * the SDK's periodic reader hands to the OTLP/HTTP (JSON) exporter. Names and
 * labels (attributes) are the Prometheus ones; counters become cumulative
 * monotonic sums, gauges gauges, histograms explicit-bucket histograms.
 * Loaded by dynamic import only when `metrics.otlp_url` is set. The wire
 * format: docs/protocol/observability.md#otlp-over-http.
 */
import { hostname } from 'node:os';
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type CollectionResult,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import type { Registry } from 'prom-client';

const hr = (ms: number): HrTime => [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)];

type PromValue = { value: number; labels: Record<string, string | number>; metricName?: string };
type PromMetric = { name: string; help: string; type: string; values: PromValue[] };

const attributes = (labels: Record<string, string | number>, skip?: string): Attributes => {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(labels)) if (k !== skip) out[k] = String(v);
  return out;
};

/** One prom-client collection as OTel metric data (exported for the unit test of the conversion). */
export function toOtelMetrics(metrics: readonly PromMetric[], startMs: number, nowMs: number): MetricData[] {
  const startTime = hr(startMs);
  const endTime = hr(nowMs);
  const out: MetricData[] = [];
  for (const m of metrics) {
    const descriptor = { name: m.name, description: m.help, unit: '', valueType: ValueType.DOUBLE };
    if (m.type === 'counter' || m.type === 'gauge') {
      const dataPoints = m.values.map((v) => ({
        startTime: m.type === 'gauge' ? endTime : startTime,
        endTime,
        attributes: attributes(v.labels),
        value: v.value,
      }));
      if (m.type === 'counter')
        out.push({
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.SUM,
          isMonotonic: true,
          dataPoints,
        });
      else
        out.push({ descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE, dataPoints });
      continue;
    }
    if (m.type !== 'histogram') continue; // no summaries are defined
    // prom-client gives cumulative `_bucket{le}` samples plus `_sum` and `_count`, per label set.
    const series = new Map<string, { attrs: Attributes; buckets: Array<[number, number]>; sum: number; count: number }>();
    for (const v of m.values) {
      const attrs = attributes(v.labels, 'le');
      const key = JSON.stringify(Object.entries(attrs).sort());
      let s = series.get(key);
      if (!s) series.set(key, (s = { attrs, buckets: [], sum: 0, count: 0 }));
      if (v.metricName === `${m.name}_bucket`) {
        const le = v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le);
        s.buckets.push([le, v.value]);
      } else if (v.metricName === `${m.name}_sum`) s.sum = v.value;
      else if (v.metricName === `${m.name}_count`) s.count = v.value;
    }
    const dataPoints = [...series.values()].map((s) => {
      const sorted = s.buckets.sort((a, b) => a[0] - b[0]);
      const boundaries = sorted.filter(([le]) => Number.isFinite(le)).map(([le]) => le);
      const cumulative = sorted.map(([, c]) => c);
      if (cumulative.length === boundaries.length) cumulative.push(s.count);
      const counts = cumulative.map((c, i) => c - (i > 0 ? (cumulative[i - 1] as number) : 0));
      return { startTime, endTime, attributes: s.attrs, value: { buckets: { boundaries, counts }, sum: s.sum, count: s.count } };
    });
    out.push({ descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.HISTOGRAM, dataPoints });
  }
  return out;
}

export interface OtlpPushOptions {
  registry: Registry;
  /** The OTLP/HTTP metrics endpoint, e.g. http://collector:4318/v1/metrics. */
  url: string;
  intervalMs: number;
  version: string;
  onError?(err: unknown): void;
}

export interface OtlpPush {
  /** Export now (tests, shutdown). */
  flush(): Promise<void>;
  /** A last export, then stop. */
  close(): Promise<void>;
}

export function startOtlpPush(o: OtlpPushOptions): OtlpPush {
  const start = Date.now();
  const producer: MetricProducer = {
    async collect(): Promise<CollectionResult> {
      const metrics = (await o.registry.getMetricsAsJSON()) as unknown as PromMetric[];
      return {
        resourceMetrics: {
          resource: resourceFromAttributes({}),
          scopeMetrics: [{ scope: { name: 'osquery-launcher', version: o.version }, metrics: toOtelMetrics(metrics, start, Date.now()) }],
        },
        errors: [],
      };
    },
  };
  const exporter = new OTLPMetricExporter({ url: o.url, timeoutMillis: Math.min(10_000, o.intervalMs) });
  const reader = new PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: o.intervalMs,
    exportTimeoutMillis: Math.min(10_000, o.intervalMs),
    metricProducers: [producer],
  });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'osquery-launcher', 'service.version': o.version, 'host.name': hostname() }),
    readers: [reader],
  });
  let closing: Promise<void> | undefined;
  return {
    flush: () => reader.forceFlush(),
    close() {
      closing ??= provider.shutdown().catch((err: unknown) => o.onError?.(err));
      return closing;
    },
  };
}
