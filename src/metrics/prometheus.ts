/**
 * The launcher's metrics on a prom-client registry (issue 18, ADR 0019).
 * Loaded by dynamic import only when metrics are enabled, so prom-client is
 * never in an idle supervisor's heap otherwise.
 *
 * Two kinds of series: collect-on-scrape gauges and counters that read the
 * MetricsSource (registrations, buffers, device state, /proc, cgroups) when
 * scraped, and the few pushed counters and histograms the MetricsRecorder
 * feeds from the hot paths (plugin dispatch, device calls, control calls,
 * publish outcomes, distributed queries). Every label value comes from a
 * bounded set: registration ids (the id rule, and only registrations that
 * exist: a removed one's pushed series are dropped at the next scrape),
 * names from our own code, and a per-label cap past which values become
 * `other`. README "Metrics" lists every series; the text format is
 * docs/protocol/observability.md#prometheus-text-format.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { REGISTRATION_ID_PATTERN } from '../registration.js';
import { cgroupUsage, processUsage } from './proc.js';
import type { GaugeCollector, LogTypeLabel, MetricsRecorder, MetricsRegistry } from './recorder.js';
import type { MetricsSource, RegistrationSample } from './source.js';

/** Every state a registration can report (supervisor loop states and instance states); anything else is `other`. */
export const REGISTRATION_STATES = [
  'pending',
  'new',
  'starting',
  'connecting',
  'running',
  'unhealthy',
  'stopping',
  'exited',
  'failed',
  'backoff',
  'stopped',
  'disabled',
  'other',
] as const;

export const DEVICE_STATES = ['enrolled', 'enrolling', 'failing', 'disabled', 'other'] as const;

const LOG_TYPES: readonly LogTypeLabel[] = ['result', 'status'];

/** Distinct values one label of one pushed series may take before the rest are counted as `other`. */
const LABEL_CAP = 64;

const NAME_PATTERN = /^[a-z_][a-z0-9_]{0,127}$/;
const TOKEN_PATTERN = /^[A-Za-z0-9_./-]{1,64}$/;

/** Keeps a label's values bounded: well-formed and at most `cap` distinct ones; the rest are `other`. */
class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(
    private readonly cap = LABEL_CAP,
    private readonly pattern = TOKEN_PATTERN,
  ) {}
  of(value: string): string {
    if (this.seen.has(value)) return value;
    if (!this.pattern.test(value) || this.seen.size >= this.cap) return 'other';
    this.seen.add(value);
    return value;
  }
}

export interface LauncherMetricsOptions {
  source: MetricsSource;
  /** `launcher_build_info{version}`. */
  version: string;
  /** Root of /proc and of the cgroup filesystem (tests). */
  procRoot?: string;
  cgroupRoot?: string;
}

export interface LauncherMetrics extends MetricsRegistry {
  readonly registry: Registry;
  readonly recorder: MetricsRecorder;
  /** The exposition text; concurrent scrapes share one collection. */
  render(): Promise<{ contentType: string; body: string }>;
  /** Stop the event-loop monitor. */
  close(): void;
}

export function createLauncherMetrics(o: LauncherMetricsOptions): LauncherMetrics {
  const registry = new Registry();
  const registers = [registry];
  const procRoot = o.procRoot ?? '/proc';
  const cgroupRoot = o.cgroupRoot ?? '/sys/fs/cgroup';

  // One snapshot of the source per collection: every collect() below of the same scrape reads it.
  let snapshot: { at: number; regs: RegistrationSample[] } | undefined;
  const regs = (): RegistrationSample[] => {
    const now = Date.now();
    if (!snapshot || now - snapshot.at > 250)
      snapshot = { at: now, regs: o.source.registrations().filter((r) => REGISTRATION_ID_PATTERN.test(r.id)) };
    return snapshot.regs;
  };
  const known = (): Set<string> => new Set(regs().map((r) => r.id));

  // --- per registration, read on scrape ---
  new Gauge({
    name: 'launcher_registration_state',
    help: 'Current state of each registration: 1 for the state it is in, 0 for the others.',
    labelNames: ['registration', 'state'],
    registers,
    collect() {
      this.reset();
      for (const r of regs()) {
        const current = (REGISTRATION_STATES as readonly string[]).includes(r.state) ? r.state : 'other';
        for (const s of REGISTRATION_STATES) this.set({ registration: r.id, state: s }, s === current ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'launcher_registration_healthy',
    help: '1 when the registration\u2019s osqueryd and extension pass the health check, else 0.',
    labelNames: ['registration'],
    registers,
    collect() {
      this.reset();
      for (const r of regs()) this.set({ registration: r.id }, r.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: 'launcher_registration_device_state',
    help: 'Standing of each registration with its device server: 1 for the current state, 0 for the others.',
    labelNames: ['registration', 'state'],
    registers,
    collect() {
      this.reset();
      for (const r of regs()) {
        const current = (DEVICE_STATES as readonly string[]).includes(r.device) ? r.device : 'other';
        for (const s of DEVICE_STATES) this.set({ registration: r.id, state: s }, s === current ? 1 : 0);
      }
    },
  });
  new Counter({
    name: 'launcher_registration_restarts_total',
    help: 'Launches of osqueryd after the first one, for any reason, since the supervisor started.',
    labelNames: ['registration'],
    registers,
    collect() {
      this.reset();
      for (const r of regs()) this.inc({ registration: r.id }, r.restarts);
    },
  });
  new Gauge({
    name: 'launcher_registration_uptime_seconds',
    help: 'Seconds since the current run\u2019s osqueryd connected (0 while not running).',
    labelNames: ['registration'],
    registers,
    collect() {
      this.reset();
      for (const r of regs()) this.set({ registration: r.id }, r.uptimeSeconds);
    },
  });

  // /proc and cgroup reads: once per scrape per running osqueryd.
  type Usage = { id: string; rss?: number; cpu?: number; cgMem?: number; cgCpu?: number };
  let usageAt = 0;
  let usage: Usage[] = [];
  const usages = (): Usage[] => {
    if (Date.now() - usageAt <= 250) return usage;
    usageAt = Date.now();
    usage = regs()
      .filter((r) => r.pid !== null)
      .map((r) => {
        const p = processUsage(r.pid as number, procRoot);
        const c = cgroupUsage(r.pid as number, r.limitsMode, cgroupRoot, procRoot);
        return { id: r.id, rss: p.rssBytes, cpu: p.cpuSeconds, cgMem: c.memoryBytes, cgCpu: c.cpuSeconds };
      });
    return usage;
  };
  const usageGauge = (name: string, help: string, pick: (u: Usage) => number | undefined, counter = false) => {
    const collect = function (this: Gauge<'registration'> | Counter<'registration'>) {
      this.reset();
      for (const u of usages()) {
        const v = pick(u);
        if (v === undefined) continue;
        if (this instanceof Gauge) this.set({ registration: u.id }, v);
        else this.inc({ registration: u.id }, v);
      }
    };
    if (counter) new Counter({ name, help, labelNames: ['registration'], registers, collect });
    else new Gauge({ name, help, labelNames: ['registration'], registers, collect });
  };
  usageGauge('launcher_osqueryd_resident_memory_bytes', 'Resident memory of the registration\u2019s osqueryd (VmRSS).', (u) => u.rss);
  usageGauge(
    'launcher_osqueryd_cpu_seconds_total',
    'User and system CPU time of the current run\u2019s osqueryd (starts again at 0 with each run).',
    (u) => u.cpu,
    true,
  );
  usageGauge(
    'launcher_osqueryd_cgroup_memory_bytes',
    'Memory charged to the run\u2019s cgroup (only while limits are enforced by a cgroup).',
    (u) => u.cgMem,
  );
  usageGauge(
    'launcher_osqueryd_cgroup_cpu_seconds_total',
    'CPU time charged to the run\u2019s cgroup (only while limits are enforced by a cgroup with CPU accounting).',
    (u) => u.cgCpu,
    true,
  );

  const bufferSeries = (name: string, help: string, pick: (b: RegistrationSample['buffers']['result']) => number, counter: boolean) => {
    const collect = function (this: Gauge<'registration' | 'log_type'> | Counter<'registration' | 'log_type'>) {
      this.reset();
      for (const r of regs())
        for (const t of LOG_TYPES) {
          const labels = { registration: r.id, log_type: t };
          if (this instanceof Gauge) this.set(labels, pick(r.buffers[t]));
          else this.inc(labels, pick(r.buffers[t]));
        }
    };
    const labelNames = ['registration', 'log_type'] as const;
    if (counter) new Counter({ name, help, labelNames, registers, collect });
    else new Gauge({ name, help, labelNames, registers, collect });
  };
  bufferSeries('launcher_log_buffer_entries', 'Logs buffered for publication, by log type.', (b) => b.count, false);
  bufferSeries('launcher_log_buffer_bytes', 'Bytes of logs buffered for publication, by log type.', (b) => b.bytes, false);
  bufferSeries(
    'launcher_log_dropped_total',
    'Logs dropped from the buffer (over its cap, or larger than a batch), by log type.',
    (b) => b.dropped,
    true,
  );

  // --- per registration, pushed from the hot paths ---
  const plugins = new BoundedLabel();
  const extensionCalls = new Counter({
    name: 'launcher_extension_calls_total',
    help: 'Calls from osqueryd to the registration\u2019s extension plugins, by plugin and outcome (ok, error).',
    labelNames: ['registration', 'plugin', 'outcome'],
    registers,
  });
  const extensionLatency = new Histogram({
    name: 'launcher_extension_call_duration_seconds',
    help: 'Time the extension took to answer osqueryd\u2019s plugin calls, by plugin.',
    labelNames: ['registration', 'plugin'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers,
  });
  const publishes = new Counter({
    name: 'launcher_log_publish_total',
    help: 'PublishLogs batches, by log type and outcome (success: acknowledged by the device server; failure).',
    labelNames: ['registration', 'log_type', 'outcome'],
    registers,
  });
  const handedOut = new Counter({
    name: 'launcher_distributed_queries_handed_out_total',
    help: 'Distributed queries handed to osqueryd.',
    labelNames: ['registration'],
    registers,
  });
  const answered = new Counter({
    name: 'launcher_distributed_queries_answered_total',
    help: 'Distributed query results (or errors) osqueryd wrote back.',
    labelNames: ['registration'],
    registers,
  });

  // Label sets of the pushed per-registration series, so a removed registration's series go at the next scrape.
  const pushed = new Map<string, Map<string, () => void>>();
  const remember = (id: string, key: string, drop: () => void): void => {
    let drops = pushed.get(id);
    if (!drops) pushed.set(id, (drops = new Map()));
    if (!drops.has(key)) drops.set(key, drop);
  };
  const prune = (): void => {
    const ids = known();
    for (const [id, drops] of pushed) {
      if (ids.has(id)) continue;
      for (const d of drops.values()) d();
      pushed.delete(id);
    }
  };
  const registrationLabel = (id: string): string | undefined => (REGISTRATION_ID_PATTERN.test(id) ? id : undefined);

  // --- supervisor ---
  new Gauge({
    name: 'launcher_build_info',
    help: 'Always 1; the launcher version as a label.',
    labelNames: ['version'],
    registers,
    collect() {
      this.reset();
      this.set({ version: TOKEN_PATTERN.test(o.version) ? o.version : 'other' }, 1);
    },
  });
  new Gauge({
    name: 'launcher_registrations',
    help: 'Registrations the supervisor knows (config and runtime).',
    registers,
    collect() {
      this.set(regs().length);
    },
  });
  new Gauge({
    name: 'launcher_supervisor_resident_memory_bytes',
    help: 'Resident memory of the supervisor process.',
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  const loop: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  let loopWindowStart = Date.now();
  new Gauge({
    name: 'launcher_supervisor_event_loop_lag_seconds',
    help: 'Event-loop delay of the supervisor over the last window (up to a minute), as p50, p99 and max.',
    labelNames: ['quantile'],
    registers,
    collect() {
      const ok = loop.count > 0;
      this.set({ quantile: '0.5' }, ok ? loop.percentile(50) / 1e9 : 0);
      this.set({ quantile: '0.99' }, ok ? loop.percentile(99) / 1e9 : 0);
      this.set({ quantile: 'max' }, ok ? loop.max / 1e9 : 0);
      if (Date.now() - loopWindowStart >= 60_000) {
        loop.reset();
        loopWindowStart = Date.now();
      }
    },
  });
  const controlMethods = new BoundedLabel();
  const controlCodes = new BoundedLabel();
  const controlCalls = new Counter({
    name: 'launcher_control_calls_total',
    help: 'Control API calls, by method and gRPC status code.',
    labelNames: ['method', 'code'],
    registers,
  });
  const deviceMethods = new BoundedLabel();
  const deviceOutcomes = new BoundedLabel();
  const deviceCalls = new Counter({
    name: 'launcher_device_calls_total',
    help: 'Device server calls (retries included in one call), by method and outcome (ok, aborted, or the error code).',
    labelNames: ['method', 'outcome'],
    registers,
  });
  const deviceLatency = new Histogram({
    name: 'launcher_device_call_duration_seconds',
    help: 'Duration of device server calls, retries and queueing included, by method.',
    labelNames: ['method'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });

  const recorder: MetricsRecorder = {
    extensionCall(registration, plugin, seconds, ok) {
      const reg = registrationLabel(registration);
      if (!reg) return;
      const p = plugins.of(plugin);
      const outcome = ok ? 'ok' : 'error';
      extensionCalls.inc({ registration: reg, plugin: p, outcome });
      extensionLatency.observe({ registration: reg, plugin: p }, seconds);
      remember(reg, `ext:${p}:${outcome}`, () => {
        extensionCalls.remove({ registration: reg, plugin: p, outcome });
        extensionLatency.remove({ registration: reg, plugin: p });
      });
    },
    distributedQueries(registration, out, back) {
      const reg = registrationLabel(registration);
      if (!reg) return;
      if (out > 0) handedOut.inc({ registration: reg }, out);
      if (back > 0) answered.inc({ registration: reg }, back);
      remember(reg, 'dist', () => {
        handedOut.remove({ registration: reg });
        answered.remove({ registration: reg });
      });
    },
    publish(registration, logType, ok) {
      const reg = registrationLabel(registration);
      if (!reg || !LOG_TYPES.includes(logType)) return;
      const outcome = ok ? 'success' : 'failure';
      publishes.inc({ registration: reg, log_type: logType, outcome });
      remember(reg, `pub:${logType}:${outcome}`, () => publishes.remove({ registration: reg, log_type: logType, outcome }));
    },
    deviceCall(method, outcome, seconds) {
      const m = deviceMethods.of(method);
      deviceCalls.inc({ method: m, outcome: deviceOutcomes.of(outcome) });
      deviceLatency.observe({ method: m }, seconds);
    },
    controlCall(method, code) {
      controlCalls.inc({ method: controlMethods.of(method), code: controlCodes.of(code) });
    },
  };

  let inFlight: Promise<{ contentType: string; body: string }> | undefined;
  const render = (): Promise<{ contentType: string; body: string }> => {
    inFlight ??= (async () => {
      try {
        snapshot = undefined;
        usageAt = 0;
        prune();
        return { contentType: registry.contentType, body: await registry.metrics() };
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };

  const collectorNames = new Set<string>();
  return {
    registry,
    recorder,
    render,
    addGauge(c: GaugeCollector) {
      if (!NAME_PATTERN.test(c.name) || !c.labelNames.every((l) => NAME_PATTERN.test(l)))
        throw new Error(`metrics collector ${JSON.stringify(c.name)}: names must match ${NAME_PATTERN}`);
      if (collectorNames.has(c.name) || registry.getSingleMetric(c.name))
        throw new Error(`metrics collector ${c.name} is already registered`);
      collectorNames.add(c.name);
      const values = c.labelNames.map(() => new BoundedLabel(256));
      new Gauge({
        name: c.name,
        help: c.help,
        labelNames: [...c.labelNames],
        registers,
        async collect() {
          this.reset();
          for (const s of await c.collect()) {
            const labels = Object.fromEntries(c.labelNames.map((l, i) => [l, (values[i] as BoundedLabel).of(s.labels[l] ?? '')]));
            this.set(labels, s.value);
          }
        },
      });
    },
    close() {
      loop.disable();
    },
  };
}
