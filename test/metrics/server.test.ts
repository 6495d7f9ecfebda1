// issue 18: the metrics endpoint and registry in this process: real HTTP on
// 127.0.0.1 and on a Unix socket, a source of registrations standing in for
// the app (the app's own source is exercised by endpoint.test.ts against a
// real supervisor). Covers the listener rules (loopback only, socket 0600),
// hostile label values, 50 registrations, a removed registration's series,
// a scraper that never reads, and the collector API other subsystems use.
import { afterEach, describe, expect, it } from 'vitest';
import { request, type RequestOptions } from 'node:http';
import { connect } from 'node:net';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { LauncherError } from '../../src/errors.js';
import { createLauncherMetrics, type LauncherMetrics } from '../../src/metrics/prometheus.js';
import { parseMetricsListen, startMetricsServer, type MetricsServer } from '../../src/metrics/server.js';
import type { RegistrationSample } from '../../src/metrics/source.js';
import { parseConfig } from '../../src/config/load.js';
import { shortTempDir } from '../helpers/tmp.js';
import { parseExposition, sample } from './exposition.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const reg = (id: string, over: Partial<RegistrationSample> = {}): RegistrationSample => ({
  id,
  state: 'running',
  healthy: true,
  device: 'enrolled',
  restarts: 0,
  uptimeSeconds: 10,
  pid: process.pid, // this process stands in for an osqueryd: /proc has real numbers for it
  limitsMode: 'none',
  buffers: { result: { count: 1, bytes: 10, dropped: 0 }, status: { count: 2, bytes: 20, dropped: 3 } },
  ...over,
});

function metricsFor(regs: () => RegistrationSample[]): LauncherMetrics {
  const m = createLauncherMetrics({ source: { registrations: regs }, version: '1.2.3' });
  cleanups.push(() => m.close());
  return m;
}

async function serve(m: LauncherMetrics, listen: string): Promise<MetricsServer> {
  const s = await startMetricsServer({ listen, render: () => m.render() });
  cleanups.push(() => s.close());
  return s;
}

function get(target: { url?: string; socketPath?: string }, path = '/metrics', method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = target.url ? new URL(target.url) : undefined;
    const opts: RequestOptions = target.socketPath
      ? { socketPath: target.socketPath, path, method }
      : { host: u!.hostname, port: Number(u!.port), path, method };
    const req = request(opts, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('metrics listen address', () => {
  it('accepts loopback TCP and absolute unix paths, refuses anything else with E_CONFIG', () => {
    expect(parseMetricsListen('127.0.0.1:9100')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 9100 });
    expect(parseMetricsListen('[::1]:0')).toEqual({ kind: 'tcp', host: '::1', port: 0 });
    expect(parseMetricsListen('unix:///run/x/metrics.sock')).toEqual({ kind: 'unix', path: '/run/x/metrics.sock' });
    for (const bad of [
      '0.0.0.0:9100',
      '10.0.0.1:9100',
      'example.com:80',
      '127.0.0.1:99999',
      'unix://relative',
      `unix:///${'a'.repeat(120)}`,
    ]) {
      expect(() => parseMetricsListen(bad), bad).toThrow(LauncherError);
      try {
        parseMetricsListen(bad);
      } catch (err) {
        expect((err as LauncherError).code).toBe('E_CONFIG');
      }
    }
  });

  it('config: metrics.listen from the file or LAUNCHER_METRICS_LISTEN, checked with its line', () => {
    const base = 'device_server: {url: "http://127.0.0.1:1"}\n';
    expect(parseConfig(base, 'x.yaml', {}).metrics).toEqual({ otlp_interval_seconds: 60 });
    expect(parseConfig(`${base}metrics: {listen: "127.0.0.1:9100"}\n`, 'x.yaml', {}).metrics.listen).toBe('127.0.0.1:9100');
    expect(parseConfig(base, 'x.yaml', { LAUNCHER_METRICS_LISTEN: 'unix:///tmp/m.sock' }).metrics.listen).toBe('unix:///tmp/m.sock');
    expect(() => parseConfig(`${base}metrics:\n  listen: "0.0.0.0:9100"\n`, 'x.yaml', {})).toThrow(
      /metrics\.listen \(line 3\): must be a loopback/,
    );
    expect(() => parseConfig(base, 'x.yaml', { LAUNCHER_METRICS_LISTEN: '0.0.0.0:1' })).toThrow(
      /LAUNCHER_METRICS_LISTEN=0\.0\.0\.0:1 \(environment\)/,
    );
    expect(() => parseConfig(`${base}metrics: {otlp_url: "ftp://x"}\n`, 'x.yaml', {})).toThrow(/metrics\.otlp_url/);
  });
});

describe('metrics endpoint', () => {
  it('serves /metrics on a unix socket of mode 0600; other paths 404, other methods 405', async () => {
    const tmp = shortTempDir('mtu');
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'm.sock');
    const s = await serve(
      metricsFor(() => [reg('acme')]),
      `unix://${path}`,
    );
    expect(s.url).toBe(`unix://${path}`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const ok = await get({ socketPath: path });
    expect(ok.status).toBe(200);
    expect(sample(parseExposition(ok.body), 'launcher_registration_healthy', { registration: 'acme' })).toBe(1);
    expect((await get({ socketPath: path }, '/')).status).toBe(404);
    expect((await get({ socketPath: path }, '/metrics', 'POST')).status).toBe(405);
    // A second server on the same live socket is refused; the file is left alone.
    await expect(startMetricsServer({ listen: `unix://${path}`, render: async () => ({ contentType: 'x', body: '' }) })).rejects.toThrow(
      /already serves/,
    );
    await s.close();
    expect(() => statSync(path)).toThrow();
  });

  it('reads /proc for each running osqueryd; a registration without a pid has no process series', async () => {
    const m = metricsFor(() => [reg('acme'), reg('idle', { pid: null, state: 'backoff', healthy: false })]);
    const x = parseExposition((await m.render()).body);
    expect(sample(x, 'launcher_osqueryd_resident_memory_bytes', { registration: 'acme' })).toBeGreaterThan(1024 * 1024);
    expect(sample(x, 'launcher_osqueryd_cpu_seconds_total', { registration: 'acme' })).toBeGreaterThan(0);
    expect(sample(x, 'launcher_osqueryd_resident_memory_bytes', { registration: 'idle' })).toBeUndefined();
    expect(sample(x, 'launcher_registration_state', { registration: 'idle', state: 'backoff' })).toBe(1);
    expect(sample(x, 'launcher_registration_state', { registration: 'idle', state: 'running' })).toBe(0);
    expect(sample(x, 'launcher_log_dropped_total', { registration: 'acme', log_type: 'status' })).toBe(3);
    // No cgroup limits in force: no cgroup series.
    expect(x.some((s) => s.name.startsWith('launcher_osqueryd_cgroup_'))).toBe(false);
  });

  it('label values are bounded: hostile ones become other, unknown registrations are ignored, removed ones disappear', async () => {
    let regs = [reg('acme'), reg('gone')];
    const m = metricsFor(() => regs);
    const r = m.recorder;
    r.extensionCall('acme', 'config/kolide_grpc', 0.01, true);
    r.extensionCall('gone', 'config/kolide_grpc', 0.01, true);
    r.extensionCall('../../etc', 'config/kolide_grpc', 0.01, true); // not an id
    r.extensionCall('acme', 'x"} 1\nfake_series 1', 0.01, false); // not a token
    for (let i = 0; i < 200; i++) r.controlCall(`Method${i}`, 'OK'); // more distinct values than the cap
    r.publish('gone', 'result', true);
    r.deviceCall('PublishLogs', 'E_DEVICE_TRANSPORT', 0.2);
    const body = (await m.render()).body;
    const x = parseExposition(body);
    expect(body).not.toContain('fake_series');
    expect(body).not.toContain('etc');
    expect(sample(x, 'launcher_extension_calls_total', { registration: 'acme', plugin: 'other', outcome: 'error' })).toBe(1);
    expect(sample(x, 'launcher_control_calls_total', { method: 'other', code: 'OK' })).toBe(200 - 64);
    expect(new Set(x.filter((s) => s.name === 'launcher_control_calls_total').map((s) => s.labels.method)).size).toBe(65);
    expect(sample(x, 'launcher_log_publish_total', { registration: 'gone', log_type: 'result', outcome: 'success' })).toBe(1);
    regs = [reg('acme')];
    const after = parseExposition((await m.render()).body);
    expect(after.some((s) => s.labels.registration === 'gone')).toBe(false);
    expect(sample(after, 'launcher_extension_calls_total', { registration: 'acme', plugin: 'config/kolide_grpc', outcome: 'ok' })).toBe(1);
  });

  it('50 registrations: bounded series count and size', async () => {
    const regs = Array.from({ length: 50 }, (_, i) => reg(`tenant-${i}`));
    const m = metricsFor(() => regs);
    for (const r of regs)
      for (const p of ['config/kolide_grpc', 'logger/kolide_grpc', 'distributed/kolide_grpc'])
        for (let i = 0; i < 5; i++) m.recorder.extensionCall(r.id, p, 0.003, true);
    const body = (await m.render()).body;
    const x = parseExposition(body);
    const perReg = x.filter((s) => s.labels.registration === 'tenant-7').length;
    // state (13) + device (5) + healthy, restarts, uptime + 2 process + buffers (6) + calls (3) + histograms (3 × (9 buckets + sum + count)).
    expect(perReg).toBe(13 + 5 + 3 + 2 + 6 + 3 + 33);
    expect(x.length).toBeLessThan(50 * perReg + 100);
    expect(Buffer.byteLength(body)).toBeLessThan(1024 * 1024);
  });

  it('a scraper that never reads does not hold up the next one', async () => {
    const m = metricsFor(() => Array.from({ length: 50 }, (_, i) => reg(`t-${i}`)));
    const s = await serve(m, '127.0.0.1:0');
    // Open connections that send half a request and never read.
    const stalled = Array.from({ length: 4 }, () => {
      const c = connect(s.port!, '127.0.0.1');
      c.on('error', () => undefined);
      c.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
      c.pause();
      return c;
    });
    cleanups.push(() => {
      for (const c of stalled) c.destroy();
    });
    const ok = await get({ url: s.url });
    expect(ok.status).toBe(200);
    expect(sample(parseExposition(ok.body), 'launcher_registrations', {})).toBe(50);
  });

  it('collectors other subsystems add appear on scrape, with bounded names', async () => {
    const m = metricsFor(() => []);
    m.addGauge({
      name: 'launcher_checkup_status',
      help: 'test collector',
      labelNames: ['check'],
      collect: () => [
        { labels: { check: 'root_directory' }, value: 1 },
        { labels: { check: 'device_server' }, value: 0 },
      ],
    });
    expect(() => m.addGauge({ name: 'launcher_checkup_status', help: '', labelNames: [], collect: () => [] })).toThrow(/already/);
    expect(() => m.addGauge({ name: 'Bad-Name', help: '', labelNames: [], collect: () => [] })).toThrow(/names must match/);
    const x = parseExposition((await m.render()).body);
    expect(sample(x, 'launcher_checkup_status', { check: 'device_server' })).toBe(0);
    expect(sample(x, 'launcher_build_info', { version: '1.2.3' })).toBe(1);
  });
});
