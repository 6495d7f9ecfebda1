/**
 * Supervisor RSS with and without metrics (issue 18, ADR 0019): the real
 * `bin/launcher run` with one registration (control API on, local device
 * server), VmRSS 30 s after start; with `metrics.listen` on a loopback port
 * the endpoint is scraped once at 20 s so prom-client's collections have run.
 * Runs alternate (off, on, off, on); medians reported.
 *
 * Run: node dist/bench/metrics-memory.js [--reps 2] [--registrations 1]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { initCertificates } from '../src/control/certs-init.js';
import { startDevServer } from '../src/devserver/index.js';
import { REPO } from './reliability/paths.js';
import { killAll, processesUnder, rssMb } from './reliability/procfs.js';
import { median, round, writeResult } from './lib.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1]!;
}
const REPS = Number(arg('reps', '2'));
const N = Number(arg('registrations', '1'));

async function one(metrics: boolean): Promise<{ rss_mb: number; scrape_bytes: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'mm-'));
  const ids = Array.from({ length: N }, (_, i) => (i === 0 ? 'kolide' : `t${i}`));
  const dev = await startDevServer({ tenants: ids.map((id) => ({ name: id, secrets: [`secret-${id}`] })) });
  try {
    const certs = await initCertificates({ dir: join(dir, 'certs') });
    const roles = JSON.parse(readFileSync(certs.rolesFile, 'utf8')) as Record<string, string>;
    const root = join(dir, 'root');
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const config = {
      root_directory: root,
      osqueryd_path: join(REPO, 'bin/osqueryd-sim'),
      device_server: { url: dev.url, insecure_transport: true },
      registrations: ids.map((id) => ({ id, enroll_secret: `secret-${id}` })),
      control: { listen: `unix://${join(dir, 'ctl.sock')}`, ca: certs.caCert, cert: certs.serverCert, key: certs.serverKey, roles },
      ...(metrics ? { metrics: { listen: `127.0.0.1:${port}` } } : {}),
    };
    const cfgFile = join(dir, 'launcher.yaml');
    writeFileSync(cfgFile, JSON.stringify(config, null, 2));
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('LAUNCHER_') || k === 'OSQUERYD_SIM_FAULTS') delete env[k];
    const child = spawn(join(REPO, 'bin/launcher'), ['run', '--config', cfgFile], { stdio: 'ignore', env });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      let bytes = 0;
      await sleep(20_000);
      if (metrics) bytes = (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).length;
      await sleep(10_000);
      if (child.exitCode !== null) throw new Error(`launcher run exited early (${child.exitCode})`);
      return { rss_mb: round(rssMb(child.pid!) ?? Number.NaN, 1), scrape_bytes: bytes };
    } finally {
      child.kill('SIGTERM');
      await exited;
      killAll(processesUnder(root));
    }
  } finally {
    await dev.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const off: number[] = [];
const on: number[] = [];
let scrape = 0;
for (let r = 0; r < REPS; r++) {
  off.push((await one(false)).rss_mb);
  const m = await one(true);
  on.push(m.rss_mb);
  scrape = m.scrape_bytes;
  console.log(JSON.stringify({ rep: r, off: off.at(-1), on: on.at(-1), scrape_bytes: scrape }));
}
const file = writeResult('metrics-memory', {
  method: `launcher run, ${N} registration(s), control API on, VmRSS 30 s after start; metrics run scraped once at 20 s; alternated`,
  registrations: N,
  without_metrics_mb: round(median(off), 1),
  with_metrics_mb: round(median(on), 1),
  samples_without_mb: off,
  samples_with_mb: on,
  scrape_bytes: scrape,
});
console.log(`written ${file}`);
