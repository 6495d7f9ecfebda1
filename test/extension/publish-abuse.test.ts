// issue 19: publishing under a failing, slow or size-limited device server —
// backoff with jitter while publishes fail (reset on success), a cap on the
// batches built or sent at once across registrations, and the batch limit
// lowered by slow sends and size refusals, grown back after quick full ones.
// Real dev server on 127.0.0.1, real device client, real SQLite file.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BatchLimit, refusedForSize } from '../../extensions/kolide_grpc/batch-limit.js';
import { PublishBackoff } from '../../extensions/kolide_grpc/publish-backoff.js';
import { PublishGate } from '../../extensions/kolide_grpc/publish-gate.js';
import { createKolideExtension, type KolideExtension, type KolideExtensionOptions } from '../../extensions/kolide_grpc/index.js';
import { DeviceClient } from '../../src/device/index.js';
import { startDevServer, type DevServer } from '../../src/devserver/index.js';
import { openDatabase, type SqliteDatabase } from '../../src/store/database.js';
import { LogBuffer } from '../../src/store/log-buffer.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';
import { seqLine, seqOf } from './support.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

const MiB = 1024 * 1024;
const IDS = ['acme', 'globex', 'initech'];
let tmp: { dir: string; cleanup: () => void };
let server: DevServer;
let client: DeviceClient;
let db: SqliteDatabase;
let exts: KolideExtension[];

async function setUp(maxBodyBytes?: number): Promise<void> {
  server = await startDevServer({
    tenants: IDS.map((id) => ({ name: id, secrets: [`secret-${id}`] })),
    ...(maxBodyBytes ? { maxBodyBytes } : {}),
  });
  client = new DeviceClient({ serverUrl: server.url, insecureTransport: true, maxAttempts: 1, timeoutMs: 10_000 });
}

beforeEach(() => {
  tmp = shortTempDir('pa');
  db = openDatabase(join(tmp.dir, 'launcher.sqlite'));
  exts = [];
});

afterEach(async () => {
  for (const e of exts) await e.stop();
  client?.close();
  await server?.close();
  db.close();
  tmp.cleanup();
});

function make(id: string, o: Partial<KolideExtensionOptions> = {}): KolideExtension {
  const ext = createKolideExtension({
    registrationId: rid(id),
    enrollSecret: `secret-${id}`,
    client,
    db,
    publishIntervalMs: 60_000,
    distributedStartupWindowMs: 0,
    ...o,
  });
  exts.push(ext);
  return ext;
}

/** `n` result logs of ~1 KiB, straight into the registration's buffer. */
function buffer(id: string, from: number, n: number): void {
  const b = new LogBuffer(db);
  for (let i = from; i < from + n; i += 500)
    b.append(
      id,
      'result',
      Array.from({ length: Math.min(500, from + n - i) }, (_, j) => seqLine(i + j, 1000)),
    );
}

const publishBatches = (tenant: string): string[][] =>
  server
    .requests()
    .filter((r) => r.rpcMethod === 'PublishLogs' && r.body.includes(`"secret-${tenant}"`) === false)
    .map((r) => (JSON.parse(r.body.toString()) as { params: { Logs: string[] } }).params.Logs);
const bytesOf = (logs: string[]): number => logs.reduce((s, l) => s + Buffer.byteLength(l), 0);
const delivered = (tenant: string): number[] => server.logs({ tenant, logType: 0 }).map((l) => seqOf(l.data));
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('PublishBackoff (issue 19)', () => {
  it('doubles from the interval to the cap with 50-100% jitter and resets on success', () => {
    let r = 0;
    const b = new PublishBackoff({ intervalMs: 100, maxMs: 1_000, random: () => r });
    expect(b.nextDelayMs()).toBe(100);
    const ceilings: number[] = [];
    for (let i = 0; i < 6; i++) {
      b.onFailure();
      ceilings.push(b.ceilingMs);
    }
    expect(ceilings).toEqual([200, 400, 800, 1000, 1000, 1000]);
    expect(b.nextDelayMs()).toBe(500);
    r = 0.999;
    expect(b.nextDelayMs()).toBe(1000);
    b.onSuccess();
    expect(b.failures).toBe(0);
    expect(b.nextDelayMs()).toBe(100);
  });
});

describe('BatchLimit under abuse (issue 19)', () => {
  it('lowers after a slow success and after a quick size refusal; grows back after quick full batches', () => {
    const l = new BatchLimit({ maxBytes: 3 * MiB, slowMs: 1_000 });
    l.onSuccess(true, 1_000);
    expect(l.current).toBe(2.5 * MiB);
    l.onFailure(5, Object.assign(new Error('PublishLogs: HTTP 413 from http://x without a JSON-RPC body'), { httpStatus: 413 }));
    expect(l.current).toBe(2 * MiB);
    l.onFailure(5, new Error('connection reset'));
    expect(l.current).toBe(2 * MiB);
    // A refused size is a ceiling for the run: quick full batches do not grow back into it.
    l.onSuccess(true, 10);
    expect(l.current).toBe(2 * MiB);
    // Slow sends alone leave no ceiling: it grows back to the maximum.
    const slow = new BatchLimit({ maxBytes: 3 * MiB, slowMs: 1_000 });
    for (let i = 0; i < 3; i++) slow.onSuccess(true, 2_000);
    expect(slow.current).toBe(1.5 * MiB);
    for (let i = 0; i < 5; i++) slow.onSuccess(true, 10);
    expect(slow.current).toBe(3 * MiB);
    expect(refusedForSize(new Error('request entity too large'))).toBe(true);
    expect(refusedForSize(new Error('HTTP 500'))).toBe(false);
  });
});

describe('log publication under a failing device server (issue 19)', () => {
  it('backs off while publishes fail (attempts thin out, the wait doubles to its cap) and resets once the server answers', async () => {
    await setUp();
    const ext = make('acme', { publishIntervalMs: 10, publishBackoffMaxMs: 320 });
    await ext.enroll();
    buffer('acme', 0, 20);
    server.setFault({ mode: 'down', methods: ['PublishLogs'] });
    const ceilings = new Set<number>();
    ext.start();
    await waitFor(
      () => {
        ceilings.add(ext.status().publish.backoffMs);
        return ext.status().publish.failures >= 7;
      },
      30_000,
      'seven failed ticks',
      2,
    );
    // Every doubling was taken, up to the cap: 10 ms → 320 ms.
    expect([...ceilings].filter((c) => c > 10).sort((a, b) => a - b)).toEqual([20, 40, 80, 160, 320]);
    // At the cap each wait is at least 160 ms, so over any stretch the attempts are at most one per 160 ms (+1);
    // without the backoff they were one per 10 ms interval. A loaded machine only makes fewer.
    const a0 = ext.status().publish.attempts;
    const t0 = Date.now();
    await waitFor(() => ext.status().publish.attempts >= a0 + 4, 30_000, 'four more attempts', 5);
    const window = Date.now() - t0;
    expect(ext.status().publish.attempts - a0).toBeLessThanOrEqual(Math.floor(window / 160) + 1);
    // The server counted them too (the one in flight may not have reached it yet).
    expect(ext.status().publish.attempts - server.stats().calls.PublishLogs).toBeLessThanOrEqual(1);
    server.setFault(undefined);
    await waitFor(() => ext.status().buffers.result.count === 0, 30_000, 'buffer drained');
    expect(ext.status().publish).toMatchObject({ failures: 0, backoffMs: 10 });
    expect([...new Set(delivered('acme'))]).toEqual(range(20));
  });

  it('builds and sends at most the gate limit of batches at once across registrations', async () => {
    await setUp();
    let peakAtServer = 0;
    const sample = setInterval(() => (peakAtServer = Math.max(peakAtServer, server.stats().inFlightByMethod.PublishLogs)), 2);
    try {
      for (const limit of [1, 3]) {
        const gate = new PublishGate(limit);
        const batch = IDS.map((id) => make(id, { publishGate: gate }));
        for (const e of batch) await e.enroll();
        for (const id of IDS) buffer(id, 0, 50);
        server.setFault({ mode: 'slow', delayMs: 150, methods: ['PublishLogs'] });
        peakAtServer = 0;
        await Promise.all(batch.map((e) => e.publishNow()));
        server.setFault(undefined);
        expect(gate.peak).toBe(limit);
        expect(peakAtServer).toBeLessThanOrEqual(limit);
        for (const e of batch) await e.stop();
        exts = [];
        for (const id of IDS) new LogBuffer(db).clear(id);
      }
    } finally {
      clearInterval(sample);
    }
    // With room for three, the three registrations were sent at once: the bound above is what held them back.
    expect(peakAtServer).toBe(3);
  });

  it('a slow server: the batch limit shrinks, then grows back after quick sends; every log arrives in order', async () => {
    await setUp();
    const ext = make('acme', { maxBytesPerBatch: 2 * MiB, slowPublishMs: 300 });
    await ext.enroll();
    buffer('acme', 0, 8_000);
    server.setFault({ mode: 'slow', delayMs: 600, methods: ['PublishLogs'], count: 2 });
    const limits: number[] = [];
    for (let i = 0; i < 4; i++) {
      limits.push(ext.status().batchLimitBytes);
      await ext.publishNow();
    }
    limits.push(ext.status().batchLimitBytes);
    expect(limits).toEqual([2 * MiB, 1.5 * MiB, 1 * MiB, 1.5 * MiB, 2 * MiB]);
    const sizes = publishBatches('acme').map(bytesOf);
    sizes.forEach((s, i) => {
      expect(s).toBeLessThanOrEqual(limits[i]!);
    });
    expect(sizes[2]).toBeGreaterThan(0.9 * MiB);
    while (ext.status().buffers.result.count > 0) await ext.publishNow();
    expect(delivered('acme')).toEqual(range(8_000));
  });

  it('a server that refuses batches for their size (HTTP 413): the limit steps down until batches pass, none lost', async () => {
    await setUp(1.3 * MiB);
    const ext = make('acme', { maxBytesPerBatch: 2 * MiB });
    await ext.enroll();
    buffer('acme', 0, 4_000);
    for (let i = 0; i < 10 && ext.status().buffers.result.count > 0; i++) await ext.publishNow();
    while (ext.status().buffers.result.count > 0) await ext.publishNow();
    // 2 MiB and 1.5 MiB refused, 1 MiB passes; it never grows back into a refused size.
    expect(ext.status().publish).toMatchObject({ limitLowered: 2, limitRaised: 0 });
    expect(ext.status().batchLimitBytes).toBe(1 * MiB);
    expect(delivered('acme')).toEqual(range(4_000));
  });
});
