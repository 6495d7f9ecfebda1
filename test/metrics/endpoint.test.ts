// issue 18: metrics of a real supervisor. A real `bin/launcher run` with two
// registrations (stand-in osqueryds, the local device server), the metrics
// endpoint on a loopback port and an OTLP/HTTP receiver on 127.0.0.1 (a plain
// HTTP server recording the JSON the exporter posts). The test scrapes the
// endpoint, kills a tenant's osqueryd with SIGKILL (its restarts go up, the
// vendor's do not), waits for published batches (publish successes go up),
// hands out a distributed query, and checks that the receiver got the same
// series with the same labels.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { LauncherProcess } from '../../bench/reliability/launcher-process.js';
import { Stage } from '../../bench/reliability/stage.js';
import { waitFor } from '../../bench/reliability/wait.js';
import { parseExposition, sample, type Sample } from './exposition.js';

let stage: Stage;
let sup: LauncherProcess;
let receiver: Server;
let receiverUrl: string;
const posts: unknown[] = [];
let url: string;

const scrape = async (): Promise<Sample[]> => {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return parseExposition(await res.text());
};

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/metrics' && String(req.headers['content-type']).includes('json'))
        posts.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const addr = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/v1/metrics`;
  stage = await Stage.create({
    prefix: 'mtr',
    registrations: ['kolide', 'acme'],
    tenantConfig: (id) => ({ schedule: { [`${id}_tick`]: { query: 'select 1 as one', interval: 1, snapshot: true } } }),
  });
  sup = LauncherProcess.start({
    ...stage.launcherOptions(),
    config: {
      // acme runs under a memory limit: a cgroup where the kernel allows one (cgroup v1 memory is writable here).
      registrations: stage.registrations.map((r) => ({
        id: r.id,
        enroll_secret: r.secret,
        ...(r.id === 'acme' ? { limits: { memory_mb: 300 } } : {}),
      })),
      metrics: { listen: '127.0.0.1:0', otlp_url: receiverUrl, otlp_interval_seconds: 1 },
    },
  });
  await sup.waitHealthy(['kolide', 'acme']);
  url = await waitFor(
    'the metrics endpoint address in the supervisor log',
    () => sup.records().find((r) => r.msg === 'metrics endpoint listening')?.url as string | undefined,
    { timeoutMs: 20_000, intervalMs: 50, explain: () => sup.tail(30) },
  );
}, 120_000);

afterAll(async () => {
  const end = await sup?.stop();
  expect(end?.code, 'supervisor exit code after SIGTERM').toBe(0);
  expect((await stage?.cleanup()) ?? []).toEqual([]);
  await new Promise((r) => receiver?.close(r));
});

const PER_REGISTRATION = [
  'launcher_registration_state',
  'launcher_registration_healthy',
  'launcher_registration_device_state',
  'launcher_registration_restarts_total',
  'launcher_registration_uptime_seconds',
  'launcher_osqueryd_resident_memory_bytes',
  'launcher_osqueryd_cpu_seconds_total',
  'launcher_log_buffer_entries',
  'launcher_log_buffer_bytes',
  'launcher_log_dropped_total',
  'launcher_log_publish_total',
  'launcher_extension_calls_total',
  'launcher_extension_call_duration_seconds_bucket',
];
const SUPERVISOR = [
  'launcher_build_info',
  'launcher_registrations',
  'launcher_supervisor_resident_memory_bytes',
  'launcher_supervisor_event_loop_lag_seconds',
  'launcher_control_calls_total',
  'launcher_device_calls_total',
  'launcher_device_call_duration_seconds_bucket',
];

describe('metrics endpoint of a running supervisor (issue 18)', () => {
  it('serves every named series with registration labels', async () => {
    // Both registrations have published at least once and osqueryd has called each one's logger, so every pushed
    // series exists (seen once in CI under load: a status publish success counted before any ok logger call was).
    let last: Sample[] = [];
    const all = await waitFor(
      'a publish success and a logger call of each registration',
      async () => {
        const s = await scrape();
        last = s;
        const ok = ['kolide', 'acme'].every(
          (id) =>
            (sample(s, 'launcher_log_publish_total', { registration: id, log_type: 'status', outcome: 'success' }) ?? 0) > 0 &&
            (sample(s, 'launcher_extension_calls_total', { registration: id, plugin: 'logger/kolide_grpc', outcome: 'ok' }) ?? 0) > 0,
        );
        return ok ? s : undefined;
      },
      {
        timeoutMs: 30_000,
        intervalMs: 200,
        explain: () =>
          `${JSON.stringify(last.filter((x) => x.name === 'launcher_extension_calls_total' || x.name === 'launcher_log_publish_total'))}\n${sup.tail(30)}`,
      },
    );
    for (const id of ['kolide', 'acme']) {
      for (const name of PER_REGISTRATION)
        expect(
          all.some((x) => x.name === name && x.labels.registration === id),
          `${name}{registration="${id}"}`,
        ).toBe(true);
      expect(sample(all, 'launcher_registration_state', { registration: id, state: 'running' })).toBe(1);
      expect(sample(all, 'launcher_registration_state', { registration: id, state: 'backoff' })).toBe(0);
      expect(sample(all, 'launcher_registration_healthy', { registration: id })).toBe(1);
      expect(sample(all, 'launcher_registration_device_state', { registration: id, state: 'enrolled' })).toBe(1);
      expect(sample(all, 'launcher_osqueryd_resident_memory_bytes', { registration: id })).toBeGreaterThan(1024 * 1024);
      expect(
        sample(all, 'launcher_extension_calls_total', { registration: id, plugin: 'config/kolide_grpc', outcome: 'ok' }),
      ).toBeGreaterThan(0);
      expect(
        sample(all, 'launcher_extension_calls_total', { registration: id, plugin: 'logger/kolide_grpc', outcome: 'ok' }),
      ).toBeGreaterThan(0);
    }
    for (const name of SUPERVISOR)
      expect(
        all.some((x) => x.name === name),
        name,
      ).toBe(true);
    expect(sample(all, 'launcher_registrations', {})).toBe(2);
    // Cgroup usage only where a cgroup enforces the limits.
    const acme = (await sup.client.getInstance('acme'))!;
    const cgroupMem = sample(all, 'launcher_osqueryd_cgroup_memory_bytes', { registration: 'acme' });
    if (acme.limits.mode.startsWith('cgroup')) expect(cgroupMem).toBeGreaterThan(1024 * 1024);
    else expect(cgroupMem).toBeUndefined();
    expect(sample(all, 'launcher_osqueryd_cgroup_memory_bytes', { registration: 'kolide' })).toBeUndefined();
    expect(sample(all, 'launcher_supervisor_resident_memory_bytes', {})).toBeGreaterThan(10 * 1024 * 1024);
    expect(sample(all, 'launcher_device_calls_total', { method: 'RequestEnrollment', outcome: 'ok' })).toBeGreaterThanOrEqual(2);
    expect(sample(all, 'launcher_control_calls_total', { method: 'Launcher/ListInstances', code: 'OK' })).toBeGreaterThan(0);
    // The self-checkups' first round (at start) shows up as one gauge per doctor check: 0 pass, 1 warn, 2 fail.
    const checkups = await waitFor(
      'the first self-checkup round in the metrics',
      async () => {
        const rows = (await scrape()).filter((x) => x.name === 'launcher_checkup_status');
        return rows.length > 0 ? rows : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, explain: () => sup.tail(30) },
    );
    for (const c of checkups) {
      expect(c.labels.check).toMatch(/\S/);
      expect([0, 1, 2]).toContain(c.value);
    }
    // Nothing in the exposition names a secret.
    const text = await (await fetch(url)).text();
    for (const r of stage.registrations) expect(text).not.toContain(r.secret);
  });

  it('a SIGKILL of a tenant osqueryd increments its restarts, not the vendor’s', async () => {
    const before = await scrape();
    const acmeRestarts = sample(before, 'launcher_registration_restarts_total', { registration: 'acme' }) ?? -1;
    const kolideRestarts = sample(before, 'launcher_registration_restarts_total', { registration: 'kolide' });
    const acme = (await sup.client.getInstance('acme'))!;
    expect(acme.pid).toBeGreaterThan(0);
    process.kill(acme.pid!, 'SIGKILL');
    const after = await waitFor(
      'acme restarted and healthy again',
      async () => {
        const s = await scrape();
        const restarted = sample(s, 'launcher_registration_restarts_total', { registration: 'acme' }) === acmeRestarts + 1;
        return restarted && sample(s, 'launcher_registration_healthy', { registration: 'acme' }) === 1 ? s : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, explain: () => sup.tail(30) },
    );
    expect(sample(after, 'launcher_registration_restarts_total', { registration: 'kolide' })).toBe(kolideRestarts);
  });

  it('a published batch increments publish successes', async () => {
    const key = { registration: 'acme', log_type: 'result', outcome: 'success' };
    const first = sample(await scrape(), 'launcher_log_publish_total', key) ?? 0;
    await waitFor(
      'another acme result batch published',
      async () => (sample(await scrape(), 'launcher_log_publish_total', key) ?? 0) > first,
      {
        timeoutMs: 30_000,
        intervalMs: 200,
        explain: () => sup.tail(30),
      },
    );
  });

  it('a distributed query is counted as handed out and answered', async () => {
    stage.dev.addQuery('acme', 'select 42 as answer');
    const s = await waitFor(
      'acme answered a distributed query',
      async () => {
        const x = await scrape();
        return (sample(x, 'launcher_distributed_queries_answered_total', { registration: 'acme' }) ?? 0) > 0 ? x : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, explain: () => sup.tail(30) },
    );
    expect(sample(s, 'launcher_distributed_queries_handed_out_total', { registration: 'acme' })).toBeGreaterThan(0);
  });

  it('the OTLP receiver gets the same series with the same labels', async () => {
    const scraped = await scrape();
    type Point = { attributes?: Array<{ key: string; value: { stringValue?: string } }> };
    type Metric = { name: string; sum?: { dataPoints: Point[] }; gauge?: { dataPoints: Point[] }; histogram?: { dataPoints: Point[] } };
    type Body = { resourceMetrics: Array<{ resource?: { attributes?: unknown[] }; scopeMetrics: Array<{ metrics: Metric[] }> }> };
    const latest = await waitFor(
      'an OTLP export carrying the restarts of acme',
      () => {
        const b = posts.at(-1) as Body | undefined;
        const metrics = b?.resourceMetrics.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics)) ?? [];
        return metrics.some((m) => m.name === 'launcher_registration_restarts_total') ? metrics : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    const names = new Set(latest.map((m) => m.name));
    const scrapedNames = new Set(scraped.map((x) => x.name.replace(/_(bucket|sum|count)$/, '')));
    for (const n of scrapedNames) expect(names.has(n), `OTLP has ${n}`).toBe(true);
    const points = (name: string) => {
      const m = latest.find((x) => x.name === name)!;
      return (m.sum ?? m.gauge ?? m.histogram)!.dataPoints;
    };
    const regs = (name: string) => new Set(points(name).map((p) => p.attributes?.find((a) => a.key === 'registration')?.value.stringValue));
    expect(regs('launcher_registration_restarts_total')).toEqual(new Set(['kolide', 'acme']));
    expect(regs('launcher_extension_call_duration_seconds')).toEqual(new Set(['kolide', 'acme']));
    expect(latest.find((m) => m.name === 'launcher_registration_restarts_total')?.sum).toBeDefined();
    expect(latest.find((m) => m.name === 'launcher_registration_healthy')?.gauge).toBeDefined();
    // Histogram points carry per-bucket counts (OTLP), which add up to the count.
    type HistPoint = { bucketCounts: Array<string | number>; count: string | number; explicitBounds: number[] };
    const hist = latest.find((m) => m.name === 'launcher_device_call_duration_seconds')!.histogram!.dataPoints as unknown as HistPoint[];
    expect(hist.length).toBeGreaterThan(0);
    for (const p of hist) {
      expect(p.bucketCounts).toHaveLength(p.explicitBounds.length + 1);
      expect(p.bucketCounts.reduce((a: number, c) => a + Number(c), 0)).toBe(Number(p.count));
    }
  });
});
