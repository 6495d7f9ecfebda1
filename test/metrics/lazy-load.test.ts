// issue 18 / ADR 0019: the idle supervisor's RSS is a tracked target (issue
// 14), so prom-client and OpenTelemetry are loaded only when metrics are
// enabled. A fresh Node process (from dist/) imports the app's composition
// root and reports which of those packages are in its module cache; then it
// imports the metrics module and reports again.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '../..');

function loadedAfter(imports: string[]): { prom: boolean; otel: boolean } {
  const script = `
    import { createRequire } from 'node:module';
    for (const m of ${JSON.stringify(imports)}) await import(m);
    const keys = Object.keys(createRequire(import.meta.url).cache);
    console.log(JSON.stringify({ prom: keys.some((k) => k.includes('/prom-client/')), otel: keys.some((k) => k.includes('/@opentelemetry/sdk-metrics/')) }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repo, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as { prom: boolean; otel: boolean };
}

describe('metrics are loaded lazily', () => {
  it('the app (and `launcher run`) load neither prom-client nor OpenTelemetry', () => {
    expect(loadedAfter([`${repo}/dist/src/app/launcher-app.js`, `${repo}/dist/src/cli/run.js`])).toEqual({ prom: false, otel: false });
  });

  it('the metrics module loads prom-client; the OTLP module loads the OTel SDK', () => {
    expect(loadedAfter([`${repo}/dist/src/metrics/prometheus.js`])).toEqual({ prom: true, otel: false });
    expect(loadedAfter([`${repo}/dist/src/metrics/otlp.js`]).otel).toBe(true);
  });
});
