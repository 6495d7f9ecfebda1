/**
 * Log publication (issue 5): a buffer of 1 KiB result lines drained by the
 * kolide_grpc publisher through the shared device client to the dev server
 * running as its own process (dist/src/devserver/main.js, plain HTTP on
 * 127.0.0.1, SQLite storage). Lines/s from the first PublishLogs to the
 * last acknowledgment, 3 MiB batches, median of 5 runs.
 *
 * Run: node dist/bench/device-publish.js
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { DeviceClient } from '../src/device/index.js';
import { openDatabase } from '../src/store/database.js';
import { LogBuffer } from '../src/store/log-buffer.js';
import { createKolideExtension } from '../extensions/kolide_grpc/index.js';
import { median, round, writeResult } from './lib.js';
import { parseRegistrationId as rid } from '../src/registration.js';

const RUNS = 5;
const LINE_BYTES = 1024;
const LINES = 30_000;
const here = dirname(fileURLToPath(import.meta.url));
const DEVSERVER = resolve(here, '../src/devserver/main.js');

function line(i: number): string {
  const head = JSON.stringify({ name: 'pack:bench:query', hostIdentifier: 'h', unixTime: 1718020800, seq: i, pad: '' });
  return head.replace('"pad":""', `"pad":"${'x'.repeat(LINE_BYTES - head.length)}"`);
}

async function startDevServer(dir: string): Promise<{ child: ChildProcess; url: string; token: string }> {
  const tokenFile = join(dir, 'admin.token');
  const child = spawn(
    process.execPath,
    [DEVSERVER, '--port', '0', '--db', join(dir, 'dev.db'), '--tenant', 'bench:bench-secret', '--admin-token-file', tokenFile],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [first] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { child, url: (JSON.parse(first) as { url: string }).url, token: readFileSync(tokenFile, 'utf8').trim() };
}

async function stats(url: string, token: string): Promise<{ stored: { logs: number }; calls: { PublishLogs: number } }> {
  const res = await fetch(`${url}/admin/stats`, { headers: { Authorization: `Bearer ${token}` } });
  return (await res.json()) as { stored: { logs: number }; calls: { PublishLogs: number } };
}

async function run(lines: string[]): Promise<{ linesPerSec: number; batches: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bp-'));
  const { child, url, token } = await startDevServer(dir);
  const db = openDatabase(join(dir, 'l.db'));
  const client = new DeviceClient({ serverUrl: url, insecureTransport: true });
  const ext = createKolideExtension({ registrationId: rid('bench'), enrollSecret: 'bench-secret', client, db, maxBatchesPerTick: 10_000 });
  try {
    await ext.enroll();
    const buffer = new LogBuffer(db);
    for (let i = 0; i < lines.length; i += 1000) buffer.append('bench', 'result', lines.slice(i, i + 1000));
    const before = (await stats(url, token)).calls.PublishLogs;
    const t = performance.now();
    while (ext.status().buffers.result.count > 0) await ext.publishNow();
    const secs = (performance.now() - t) / 1000;
    const after = await stats(url, token);
    if (after.stored.logs !== lines.length) throw new Error(`dev server stored ${after.stored.logs} of ${lines.length} lines`);
    return { linesPerSec: lines.length / secs, batches: after.calls.PublishLogs - before };
  } finally {
    await ext.stop();
    client.close();
    db.close();
    child.kill('SIGTERM');
    await once(child, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const lines = Array.from({ length: LINES }, (_, i) => line(i));
  const rates: number[] = [];
  let batches = 0;
  for (let r = 0; r < RUNS; r++) {
    const res = await run(lines);
    rates.push(res.linesPerSec);
    batches = res.batches;
  }
  const summary = {
    lines_per_sec: round(median(rates), 0),
    mib_per_sec: round((median(rates) * LINE_BYTES) / 2 ** 20, 1),
    batches_per_run: batches,
    runs_lines_per_sec: rates.map((x) => round(x, 0)),
  };
  const file = writeResult('device-publish', {
    runs: RUNS,
    line_bytes: LINE_BYTES,
    lines_per_run: LINES,
    max_bytes_per_batch: 3 * 1024 * 1024,
    server: 'dev server child process, HTTP on 127.0.0.1, SQLite (WAL)',
    ...summary,
  });
  console.log(JSON.stringify(summary, null, 2));
  console.log(`written to ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
