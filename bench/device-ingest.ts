/**
 * Log intake (issue 5): the kolide_grpc logger plugin appending 1 KiB result
 * lines to the durable SQLite buffer (WAL, synchronous=NORMAL), lines/s,
 * median of 5 runs, each on a fresh database file.
 *
 * - sequential: one logString at a time (osqueryd's scheduler sends results
 *   one call at a time); each call waits for its own commit.
 * - concurrent_64: 64 calls in flight; appends share commits (group commit).
 * - status_batches_100: status batches of 100 lines per call.
 *
 * Run: node dist/bench/device-ingest.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DeviceClient } from '../src/device/index.js';
import { openDatabase } from '../src/store/database.js';
import { createKolideExtension, type KolideExtension } from '../extensions/kolide_grpc/index.js';
import { median, round, writeResult } from './lib.js';
import { parseRegistrationId as rid } from '../src/registration.js';

const RUNS = 5;
const LINE_BYTES = 1024;
const LINES = 20_000;

function line(i: number): string {
  const head = JSON.stringify({
    name: 'pack:bench:query',
    hostIdentifier: 'h',
    calendarTime: 'Mon Jun 10 12:00:00 2024 UTC',
    unixTime: 1718020800,
    seq: i,
    pad: '',
  });
  return head.replace('"pad":""', `"pad":"${'x'.repeat(LINE_BYTES - head.length)}"`);
}

async function withExtension<T>(fn: (ext: KolideExtension) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'bi-'));
  const db = openDatabase(join(dir, 'l.db'));
  // Never contacted: the extension is not started.
  const client = new DeviceClient({ serverUrl: 'http://127.0.0.1:9', insecureTransport: true });
  const ext = createKolideExtension({ registrationId: rid('bench'), enrollSecret: 'x', client, db });
  try {
    return await fn(ext);
  } finally {
    await ext.stop();
    client.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function sequential(lines: string[]): Promise<number> {
  return withExtension(async (ext) => {
    const t = performance.now();
    for (const l of lines) await ext.loggerPlugin.logString(l, 'string');
    const rate = lines.length / ((performance.now() - t) / 1000);
    if (ext.status().buffers.result.count !== lines.length) throw new Error('lost lines');
    return rate;
  });
}

async function concurrent(lines: string[], inFlight: number): Promise<number> {
  return withExtension(async (ext) => {
    let next = 0;
    const t = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < lines.length) await ext.loggerPlugin.logString(lines[next++]!, 'string');
      }),
    );
    const rate = lines.length / ((performance.now() - t) / 1000);
    if (ext.status().buffers.result.count !== lines.length) throw new Error('lost lines');
    return rate;
  });
}

async function statusBatches(lines: string[], size: number): Promise<number> {
  return withExtension(async (ext) => {
    const t = performance.now();
    for (let i = 0; i < lines.length; i += size) {
      const raw = lines.slice(i, i + size);
      await ext.loggerPlugin.logStatus([], raw);
    }
    const rate = lines.length / ((performance.now() - t) / 1000);
    if (ext.status().buffers.status.count !== lines.length) throw new Error('lost lines');
    return rate;
  });
}

async function main(): Promise<void> {
  const lines = Array.from({ length: LINES }, (_, i) => line(i));
  const results: Record<string, number[]> = { sequential: [], concurrent_64: [], status_batches_100: [] };
  for (let r = 0; r < RUNS; r++) {
    results.sequential!.push(await sequential(lines));
    results.concurrent_64!.push(await concurrent(lines, 64));
    results.status_batches_100!.push(await statusBatches(lines, 100));
  }
  const summary = Object.fromEntries(
    Object.entries(results).map(([k, v]) => [
      k,
      { lines_per_sec: round(median(v), 0), mib_per_sec: round((median(v) * LINE_BYTES) / 2 ** 20, 1), runs: v.map((x) => round(x, 0)) },
    ]),
  );
  const file = writeResult('device-ingest', {
    runs: RUNS,
    line_bytes: LINE_BYTES,
    lines_per_run: LINES,
    durability: 'SQLite WAL, synchronous=NORMAL; commit before the plugin answers',
    ...summary,
  });
  console.log(JSON.stringify(summary, null, 2));
  console.log(`written to ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
