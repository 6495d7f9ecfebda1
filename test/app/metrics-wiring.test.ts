// issue 18: the app's metrics wiring in this process (real HTTP on a Unix
// socket): collectors added before the module loads are registered when it
// does, a bad one is left out with an error log instead of stopping the
// supervisor, and a stop() that races start() leaves nothing listening.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import pino from 'pino';
import { MetricsWiring } from '../../src/app/metrics.js';
import { shortTempDir } from '../helpers/tmp.js';

const tmp = shortTempDir('mw');
afterAll(() => tmp.cleanup());

function scrape(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('MetricsWiring', () => {
  it('registers collectors added early; a bad one is refused and logged, the rest served', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    const path = join(tmp.dir, 'a.sock');
    const w = new MetricsWiring({ listen: `unix://${path}`, otlp_interval_seconds: 60 }, '1.0.0', log);
    w.addGauge({
      name: 'launcher_checkup_status',
      help: 'h',
      labelNames: ['check'],
      collect: () => [{ labels: { check: 'x' }, value: 1 }],
    });
    w.addGauge({ name: 'not valid!', help: 'h', labelNames: [], collect: () => [] });
    await w.start({ registrations: () => [] });
    try {
      expect(w.url).toBe(`unix://${path}`);
      expect(await scrape(path)).toContain('launcher_checkup_status{check="x"} 1');
      expect(lines.some((l) => l.msg === 'metrics collector refused' && l.collector === 'not valid!')).toBe(true);
    } finally {
      await w.stop();
    }
    expect(existsSync(path)).toBe(false);
  });

  it('stop() during start() leaves no listener', async () => {
    const path = join(tmp.dir, 'b.sock');
    const w = new MetricsWiring({ listen: `unix://${path}`, otlp_interval_seconds: 60 }, '1.0.0', pino({ level: 'silent' }));
    const starting = w.start({ registrations: () => [] });
    await w.stop();
    await starting;
    expect(existsSync(path)).toBe(false);
    expect(w.url).toBeUndefined();
  });
});
