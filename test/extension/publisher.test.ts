/** Logger plugin intake and the publication loop (docs/protocol/device.md#logger-plugin, docs/protocol/device.md#log-publishing). */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BatchLimit } from '../../extensions/kolide_grpc/batch-limit.js';
import { waitFor } from '../helpers/tmp.js';
import { call, makeEnv, seqLine, seqOf, type Env } from './support.js';

let env: Env;

beforeEach(async () => {
  env = await makeEnv();
});

afterEach(async () => {
  await env.cleanup();
});

const statusBatch = (msgs: string[]) =>
  JSON.stringify(msgs.map((m, i) => ({ s: 0, f: 'x.cpp', i, m, h: 'host', c: 'Mon Jun 10 12:00:00 2024 UTC', u: 1718020800 })));

describe('kolide_grpc logger plugin', () => {
  it('buffers string and snapshot logs as result logs and each status element separately', async () => {
    const ext = env.make();
    expect((await call(ext.loggerPlugin, { init: 'osqueryd' })).status.code).toBe(0);
    expect((await call(ext.loggerPlugin, { action: 'features' })).status.code).toBe(1);
    await call(ext.loggerPlugin, { string: seqLine(1), category: 'event' });
    await call(ext.loggerPlugin, { snapshot: seqLine(2) });
    await call(ext.loggerPlugin, { status: 'true', log: statusBatch(['a', 'b', 'c']) });
    expect((await call(ext.loggerPlugin, { event: '{}' })).status.code).toBe(1);
    const s = ext.status().buffers;
    expect(s.result.count).toBe(2);
    expect(s.status.count).toBe(3);

    await ext.publishNow();
    const reqs = env.server
      .requests()
      .filter((r) => r.rpcMethod === 'PublishLogs')
      .map((r) => JSON.parse(r.body.toString()).params);
    // Status first, then result; LogType 4 and 0; one element per status log, raw JSON text.
    expect(reqs.map((p) => p.LogType)).toEqual([4, 0]);
    expect(reqs[0].Logs.map((l: string) => JSON.parse(l).m)).toEqual(['a', 'b', 'c']);
    expect(JSON.parse(reqs[0].Logs[0])).toEqual({
      s: 0,
      f: 'x.cpp',
      i: 0,
      m: 'a',
      h: 'host',
      c: 'Mon Jun 10 12:00:00 2024 UTC',
      u: 1718020800,
    });
    expect(reqs[1].Logs).toEqual([seqLine(1), seqLine(2)]);
    expect(ext.status().buffers.result.count).toBe(0);
    expect(ext.status().buffers.status.count).toBe(0);
    expect(ext.status().publishedLogs).toEqual({ status: 3, result: 2 });
    expect(ext.status().lastPublishAt).toBeGreaterThan(0);
  });

  it('backend down for a while, then up: every log arrives, in order, none lost', async () => {
    const ext = env.make({ publishIntervalMs: 15 });
    await ext.enroll();
    env.server.setFault({ mode: 'down', methods: ['PublishLogs'] });
    ext.start();
    let n = 0;
    // Keep writing while publishes keep failing.
    await waitFor(
      async () => {
        await ext.loggerPlugin.logString(seqLine(n++), 'string');
        return env.server.stats().calls.PublishLogs >= 5;
      },
      10_000,
      'five failed publishes',
      5,
    );
    expect(env.server.logs()).toHaveLength(0);
    expect(ext.status().lastError?.operation).toBe('publish_result');
    env.server.setFault(undefined);
    for (let i = 0; i < 20; i++) await ext.loggerPlugin.logString(seqLine(n++), 'string');
    await waitFor(() => ext.status().buffers.result.count === 0 && env.server.logs().length >= n, 10_000, 'all logs delivered');
    const seqs = env.server.logs({ tenant: 'acme', logType: 0 }).map((l) => seqOf(l.data));
    const firstSeen = [...new Set(seqs)];
    expect(firstSeen).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it('batches are bounded by bytes; a log bigger than a batch is dropped and counted', async () => {
    const ext = env.make({ maxBytesPerBatch: 1_000, maxBatchesPerTick: 100 });
    for (let i = 0; i < 25; i++) await ext.loggerPlugin.logString(seqLine(i, 70), 'string');
    await ext.loggerPlugin.logString(seqLine(999, 2_000), 'snapshot');
    await ext.publishNow();
    const batches = env.server
      .requests()
      .filter((r) => r.rpcMethod === 'PublishLogs')
      .map((r) => JSON.parse(r.body.toString()).params.Logs as string[]);
    expect(batches.length).toBeGreaterThan(2);
    for (const b of batches) expect(b.reduce((s, l) => s + Buffer.byteLength(l), 0)).toBeLessThanOrEqual(1_000);
    expect(batches.flat().map(seqOf)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(ext.status().buffers.result).toMatchObject({ count: 0, droppedOversize: 1, dropped: 1 });
  });

  it('one batch per type per tick by default (launcher behaviour)', async () => {
    const ext = env.make({ maxBytesPerBatch: 1_000 });
    for (let i = 0; i < 25; i++) await ext.loggerPlugin.logString(seqLine(i, 70), 'string');
    await ext.publishNow();
    expect(env.server.stats().calls.PublishLogs).toBe(1);
    expect(ext.status().buffers.result.count).toBeGreaterThan(0);
  });

  it('the buffer cap drops the oldest logs and counts them', async () => {
    const ext = env.make({ bufferCap: 10 });
    for (let i = 0; i < 25; i++) await ext.loggerPlugin.logString(seqLine(i), 'string');
    expect(ext.status().buffers.result).toMatchObject({ count: 10, droppedCap: 15, dropped: 15 });
    await ext.publishNow();
    expect(env.server.logs().map((l) => seqOf(l.data))).toEqual(Array.from({ length: 10 }, (_, i) => 15 + i));
    expect(ext.status().buffers.result.droppedCap).toBe(15);
  });

  it('a failed publish keeps the batch; only acknowledged logs are deleted', async () => {
    const ext = env.make();
    for (let i = 0; i < 3; i++) await ext.loggerPlugin.logString(seqLine(i), 'string');
    env.server.setFault({ mode: 'rpc-error', methods: ['PublishLogs'], count: 1 });
    await ext.publishNow();
    expect(ext.status().buffers.result.count).toBe(3);
    expect(ext.status().lastError).toMatchObject({ operation: 'publish_result', code: 'E_DEVICE_REJECTED' });
    await ext.publishNow();
    expect(ext.status().buffers.result.count).toBe(0);
    expect(env.server.logs().map((l) => seqOf(l.data))).toEqual([0, 1, 2]);
  });
});

describe('BatchLimit', () => {
  it('lowers after slow failures, raises after full batches, within floor and max', () => {
    const max = 3 * 1024 * 1024;
    const step = 512 * 1024;
    const l = new BatchLimit({ maxBytes: max });
    expect(l.current).toBe(max);
    l.onFailure(19_999);
    expect(l.current).toBe(max);
    l.onFailure(20_000);
    expect(l.current).toBe(max - step);
    for (let i = 0; i < 10; i++) l.onFailure(30_000);
    expect(l.current).toBe(step);
    l.onSuccess(false);
    expect(l.current).toBe(step);
    l.onSuccess(true);
    expect(l.current).toBe(2 * step);
    for (let i = 0; i < 10; i++) l.onSuccess(true);
    expect(l.current).toBe(max);
    const off = new BatchLimit({ maxBytes: max, enabled: false });
    off.onFailure(60_000);
    expect(off.current).toBe(max);
  });
});
