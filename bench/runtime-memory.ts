/**
 * Supervisor memory (issues 4, 14): the resident set of the real supervisor
 * process (`bin/launcher run --config` started as an installed one is, so with
 * the flags its entry point carries; control API on, a local device server;
 * osqueryd children are separate processes and not included) 30 s after it
 * was started, with no forced GC, for 1, 10 and 50 registrations. The
 * children's total RSS is reported beside it for scale only, with how many
 * instances were healthy at the sample.
 *
 * Trees alternate (A B A B) within each count; `--base DIR` adds a built tree
 * as "before". `--after DIR` measures another built tree as "after" (default
 * this one). `--reps N` runs per tree and count (default 2; medians reported).
 *
 * Run: node dist/bench/runtime-memory.js [--base DIR] [--after DIR] [--counts 1,10,50] [--reps 2]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { initCertificates } from '../src/control/certs-init.js';
import { ControlClient } from '../src/control/client.js';
import { startDevServer } from '../src/devserver/index.js';
import { REPO } from './reliability/paths.js';
import { killAll, processesUnder, rssMb } from './reliability/procfs.js';
import { median, round, writeResult } from './lib.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1]!;
}

const COUNTS = arg('counts', '1,10,50').split(',').map(Number);
const REPS = Number(arg('reps', '2'));
const SAMPLE_AFTER_MS = Number(arg('sample-after-ms', '30000'));
const BASE = arg('base', '');
const AFTER = arg('after', REPO);

interface Tree {
  name: string;
  repo: string;
}

async function one(tree: Tree, n: number): Promise<{ rss_mb: number; healthy: number; children_rss_mb_total: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bm-'));
  const ids = Array.from({ length: n }, (_, i) => (i === 0 ? 'kolide' : `t${i}`));
  const dev = await startDevServer({ tenants: ids.map((id) => ({ name: id, secrets: [`secret-${id}`] })) });
  try {
    const certs = await initCertificates({ dir: join(dir, 'certs') });
    const roles = JSON.parse(readFileSync(certs.rolesFile, 'utf8')) as Record<string, string>;
    const listen = `unix://${join(dir, 'ctl.sock')}`;
    const root = join(dir, 'root');
    const config = {
      root_directory: root,
      osqueryd_path: join(tree.repo, 'bin/osqueryd-sim'),
      device_server: { url: dev.url, insecure_transport: true },
      registrations: ids.map((id) => ({ id, enroll_secret: `secret-${id}` })),
      control: { listen, ca: certs.caCert, cert: certs.serverCert, key: certs.serverKey, roles },
    };
    const cfgFile = join(dir, 'launcher.yaml');
    writeFileSync(cfgFile, JSON.stringify(config, null, 2));
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('LAUNCHER_') || k === 'OSQUERYD_SIM_FAULTS') delete env[k];
    // As installed: the entry point itself (its shebang, like packaging/launcher.sh, carries the runtime's flags).
    const child = spawn(join(tree.repo, 'bin/launcher'), ['run', '--config', cfgFile], { stdio: 'ignore', env });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await sleep(SAMPLE_AFTER_MS);
      if (child.exitCode !== null) throw new Error(`${tree.name}: launcher run exited early (${child.exitCode})`);
      const rss = rssMb(child.pid!) ?? NaN;
      const kids = processesUnder(root).reduce((sum, p) => sum + (rssMb(p) ?? 0), 0);
      const client = new ControlClient({
        target: listen,
        ca: certs.caCert,
        cert: join(certs.dir, 'admin.pem'),
        key: join(certs.dir, 'admin.key'),
        callTimeoutMs: 10_000,
      });
      const healthy = (await client.listInstances().catch(() => [])).filter((i) => i.healthy).length;
      client.close();
      return { rss_mb: round(rss, 1), healthy, children_rss_mb_total: round(kids, 1) };
    } finally {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
      killAll(processesUnder(root));
    }
  } finally {
    await dev.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const trees: Tree[] = [{ name: 'after', repo: AFTER }];
if (BASE && existsSync(join(BASE, 'dist/src/cli/main.js'))) trees.unshift({ name: 'before', repo: BASE });
const scenarios: Array<Record<string, unknown>> = [];
for (const n of COUNTS) {
  const runs = new Map<string, Array<Awaited<ReturnType<typeof one>>>>(trees.map((t) => [t.name, []]));
  for (let r = 0; r < REPS; r++) {
    for (const t of trees) {
      const res = await one(t, n);
      runs.get(t.name)!.push(res);
      console.log(JSON.stringify({ tree: t.name, registrations: n, ...res }));
    }
  }
  for (const [name, rs] of runs) {
    scenarios.push({
      tree: name,
      registrations: n,
      supervisor_rss_mb: round(median(rs.map((x) => x.rss_mb)), 1),
      samples_mb: rs.map((x) => x.rss_mb),
      healthy_at_sample: Math.min(...rs.map((x) => x.healthy)),
      children_rss_mb_total: round(median(rs.map((x) => x.children_rss_mb_total)), 1),
    });
  }
}
const file = writeResult('runtime-memory', {
  method: `launcher run (control API on, local device server), VmRSS of the supervisor ${SAMPLE_AFTER_MS / 1000} s after start, no forced GC; trees alternated`,
  osqueryd: 'osqueryd-sim (Node)',
  trees: Object.fromEntries(trees.map((t) => [t.name, t.repo])),
  load_avg_1m: round(loadavg()[0]!, 2),
  scenarios,
  targets_mb: { registrations_1: 70, registrations_50: 100 },
});
console.log(`wrote ${file}`);
