// Issue 9 (fuzz): the Thrift servers survive random and mutated frames. Two targets, each on a
// real Unix socket: an ExtensionServer registered with a minimal manager (in this process), and
// the manager socket of a running bin/osqueryd-sim (its own process). Inputs are random byte
// frames and mutated valid calls (bit flips, inserted/deleted bytes, truncation, huge/negative
// lengths, wrong type bytes, broken headers), each on its own connection and several on one
// connection. After every batch: the server is alive and serving, a fresh ping on a new
// connection answers, a connection opened before the fuzzing still answers, the legitimate
// state (registration, table rows) is intact, no connection is leaked, and (osqueryd-sim) its
// RSS stays within a bound. Every fuzz connection is closed by the server or by the test after a
// short bound; pings on other connections keep being answered while a batch runs.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtensionClient, ExtensionManagerClient } from '../../src/osquery/client.js';
import { ThriftConnection } from '../../src/osquery/connection.js';
import { ExtensionServer } from '../../src/osquery/extension-server.js';
import { ColumnOptions, type LoggerPlugin, type TablePlugin } from '../../src/osquery/plugins.js';
import type { ExtensionStatus } from '../../src/osquery/protocol.js';
import { FuzzRun, fuzzIterations } from '../helpers/fuzz.js';
import {
  FUZZ_REGISTRY,
  TABLE_REQUEST,
  encode,
  encodeWithGeneratedClient,
  extensionSeeds,
  managerSeeds,
  mutate,
  pooled,
  probe,
  rssKiB,
  socketCount,
  type Frame,
  type ProbeResult,
} from '../helpers/fuzz-thrift.js';
import { startMinimalManager, type MinimalManager } from '../helpers/minimal-manager.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';
import { SimHarness, type SimProcess } from '../sim/helpers.js';

/** Single-frame connections per target, and multi-frame connections (defaults; see test/helpers/fuzz.ts). */
const SINGLE = fuzzIterations(300);
const MULTI = fuzzIterations(60);
const BATCH = 50;
const CONCURRENCY = 25;
/** How long a fuzz connection the server keeps open is held before the test cuts it. */
const PROBE_BOUND_MS = 150;
/** RSS growth of osqueryd-sim allowed over the whole run (KiB). */
const RSS_BOUND_KIB = 64 * 1024;
/** Extra sockets tolerated after a batch (the watcher's and our health checks' own). */
const SOCKET_SLACK = 6;
/** Test timeout that grows with the iteration count (FUZZ_SCALE / FUZZ_ITERATIONS). */
const timeoutFor = (n: number) => 60_000 + n * 25;

function fuzzTable(): TablePlugin {
  return {
    kind: 'table',
    name: 'fuzz_t',
    columns: [
      { name: 'k', type: 'TEXT', options: ColumnOptions.INDEX },
      { name: 'v', type: 'TEXT' },
    ],
    generate: () => [
      { k: 'a', v: 'alpha' },
      { k: 'b', v: 'beta' },
    ],
  };
}

function fuzzLogger(): LoggerPlugin & { lines: number } {
  const plugin = {
    kind: 'logger' as const,
    name: 'fuzz_log',
    lines: 0,
    logString: () => {
      plugin.lines++;
    },
    logStatus: (entries: unknown[]) => {
      plugin.lines += entries.length;
    },
  };
  return plugin;
}

/** One fuzz connection per input. */
function singleInputs(run: FuzzRun, seeds: readonly Frame[], n: number) {
  return Array.from({ length: n }, () => {
    const m = mutate(run.rng, seeds);
    const split = run.rng.bool(0.25);
    const chunks = split && m.bytes.length > 2 ? splitBytes(m.bytes, run) : [m.bytes];
    return { ...m, chunks, endAfterWrite: run.rng.bool(0.5) };
  });
}

/** Several frames on one connection: valid and mutated, concatenated or written one by one. */
function multiInputs(run: FuzzRun, seeds: readonly Frame[], n: number) {
  return Array.from({ length: n }, () => {
    const frames: Buffer[] = [];
    const kinds: string[] = [];
    for (let k = run.rng.range(2, 6); k > 0; k--) {
      if (run.rng.bool(0.4)) {
        const s = run.rng.pick(seeds);
        frames.push(s.bytes);
        kinds.push(`valid:${s.name}`);
      } else {
        const m = mutate(run.rng, seeds);
        frames.push(m.bytes);
        kinds.push(`${m.mutation}:${m.seed}`);
      }
    }
    const chunks = run.rng.bool(0.5) ? [Buffer.concat(frames)] : frames;
    return { mutation: 'multi' as const, seed: kinds.join(','), bytes: Buffer.concat(frames), chunks, endAfterWrite: run.rng.bool(0.3) };
  });
}

function splitBytes(b: Buffer, run: FuzzRun): Buffer[] {
  const cut = run.rng.range(1, b.length - 1);
  return [b.subarray(0, cut), b.subarray(cut)];
}

interface Target {
  path: string;
  /** Throws when the server or its legitimate state is harmed. */
  healthCheck(): Promise<void>;
  /** Pid whose sockets (and RSS) are watched. */
  pid: number;
}

/** Fresh-connection pings in a loop until `until` settles; every one must answer. */
async function pingWhile(path: string, manager: boolean, until: Promise<unknown>): Promise<number> {
  let done = false;
  until.then(
    () => (done = true),
    () => (done = true),
  );
  let pings = 0;
  while (!done) {
    const client = manager ? new ExtensionManagerClient(path, { timeoutMs: 5_000 }) : new ExtensionClient(path, { timeoutMs: 5_000 });
    try {
      const st = await client.ping();
      if (st.code !== 0) throw new Error(`ping during fuzzing answered code ${st.code}: ${st.message}`);
      pings++;
    } finally {
      client.close();
    }
  }
  return pings;
}

async function runBatches(
  run: FuzzRun,
  target: Target,
  inputs: Array<{ mutation: string; seed: string; bytes: Buffer; chunks: Buffer[]; endAfterWrite: boolean }>,
  manager: boolean,
): Promise<void> {
  const baseSockets = socketCount(target.pid);
  for (let start = 0; start < inputs.length; start += BATCH) {
    const batch = inputs.slice(start, start + BATCH);
    const results = pooled(
      batch.map(
        (input) => () =>
          run.checkAsync(input.bytes, async (): Promise<ProbeResult> => {
            const r = await probe(target.path, input.chunks, { boundMs: PROBE_BOUND_MS, endAfterWrite: input.endAfterWrite });
            if (r.outcome === 'connect-failed') throw new Error(`could not connect to ${target.path} (server gone?)`);
            run.count(`mutation:${input.mutation}`);
            run.count(`outcome:${r.outcome}`);
            return r;
          }),
      ),
      CONCURRENCY,
    );
    const pings = await pingWhile(target.path, manager, results).catch((err: unknown) =>
      run.fail(`ping while batch ${start / BATCH} ran`, err),
    );
    await results;
    run.count('concurrent-pings', pings);
    if (process.env.FUZZ_VERBOSE)
      console.log(`${run.target} batch ${start / BATCH}: rss ${rssKiB(target.pid)} KiB, sockets ${socketCount(target.pid)}`);
    try {
      await target.healthCheck();
      // Every fuzz connection is gone on the server side too (none leaked, none stuck).
      await waitFor(
        () => socketCount(target.pid) <= baseSockets + SOCKET_SLACK,
        5_000,
        `sockets of pid ${target.pid} back to ${baseSockets}+${SOCKET_SLACK}`,
      );
    } catch (err) {
      run.fail(`health check after batch ${start / BATCH} (inputs ${start}..${start + batch.length - 1})`, err);
    }
  }
}

describe('fuzz: ExtensionServer socket', () => {
  let tmp: ReturnType<typeof shortTempDir>;
  let manager: MinimalManager;
  let ext: ExtensionServer;
  let logger: ReturnType<typeof fuzzLogger>;
  let longLived: ThriftConnection;
  let target: Target;

  beforeAll(async () => {
    tmp = shortTempDir('fz');
    const managerPath = join(tmp.dir, 'm.em');
    manager = await startMinimalManager(managerPath);
    logger = fuzzLogger();
    ext = new ExtensionServer({ name: 'fuzz_ext', managerPath, plugins: [fuzzTable(), logger], pingIntervalMs: 0 });
    await ext.start();
    longLived = await ThriftConnection.connect(ext.socketPath, 'extension', 5_000);
    const uuid = ext.uuid;
    target = {
      path: ext.socketPath,
      pid: process.pid,
      healthCheck: async () => {
        expect(ext.state).toBe('serving');
        expect(ext.uuid).toBe(uuid);
        expect(manager.registered.get(uuid)?.info.name).toBe('fuzz_ext');
        const fresh = new ExtensionClient(ext.socketPath, { timeoutMs: 5_000 });
        try {
          expect(await fresh.ping()).toEqual({ code: 0, message: 'OK', uuid });
          const res = await fresh.call('table', 'fuzz_t', TABLE_REQUEST);
          expect(res.status.code).toBe(0);
          expect(res.response).toEqual([
            { k: 'a', v: 'alpha' },
            { k: 'b', v: 'beta' },
          ]);
        } finally {
          fresh.close();
        }
        expect(longLived.closed).toBe(false);
        const st = await longLived.invoke<ExtensionStatus>('ping', [], 5_000);
        expect(st.code).toBe(0);
      },
    };
  });

  afterAll(async () => {
    longLived?.close();
    await ext?.stop();
    await manager?.close();
    tmp?.cleanup();
  });

  it('encodes its seed calls exactly as the generated client does', () => {
    expect(encode.ping(3).bytes).toEqual(encodeWithGeneratedClient('extension', 'ping', [], 3));
    expect(encode.call('table', 'fuzz_t', TABLE_REQUEST, 5).bytes).toEqual(
      encodeWithGeneratedClient('extension', 'call', ['table', 'fuzz_t', TABLE_REQUEST], 5),
    );
    const info = { name: 'fuzz_reg', version: '1.0', sdk_version: '1.8.0', min_sdk_version: '' };
    expect(encode.registerExtension(info, FUZZ_REGISTRY, 2).bytes).toEqual(
      encodeWithGeneratedClient('manager', 'registerExtension', [info, FUZZ_REGISTRY], 2),
    );
    expect(encode.query('select 1', 4).bytes).toEqual(encodeWithGeneratedClient('manager', 'query', ['select 1'], 4));
    expect(encode.deregisterExtension(0x7f00_0000_0000_0000n, 1).bytes).toEqual(
      encodeWithGeneratedClient('manager', 'deregisterExtension', [0x7f00_0000_0000_0000n], 1),
    );
  });

  it(
    `survives ${SINGLE} mutated or random frames, one per connection`,
    async () => {
      await target.healthCheck();
      const run = new FuzzRun('thrift.extension-server.single');
      await runBatches(run, target, singleInputs(run, extensionSeeds('fuzz_t'), SINGLE), false);
      const stats = run.finish();
      expect(stats.failures).toBe(0);
      expect(stats.iterations).toBe(SINGLE);
      // The bad-frame path was exercised: the server itself dropped connections.
      expect(stats.outcomes['outcome:closed-by-server'] ?? 0).toBeGreaterThan(0);
    },
    timeoutFor(SINGLE),
  );

  it(
    `survives ${MULTI} connections carrying several valid and mutated frames each`,
    async () => {
      const run = new FuzzRun('thrift.extension-server.multi');
      await runBatches(run, target, multiInputs(run, extensionSeeds('fuzz_t'), MULTI), false);
      expect(run.finish().failures).toBe(0);
    },
    timeoutFor(MULTI),
  );
});

describe('fuzz: osqueryd-sim manager socket', () => {
  let h: SimHarness;
  let sim: SimProcess;
  let socket: string;
  let legit: ExtensionServer;
  let longLived: ThriftConnection;
  let target: Target;
  let rssStart = 0;

  beforeAll(async () => {
    h = new SimHarness();
    const p = h.paths('f');
    const started = await h.start(p, ['--disable_watchdog']);
    sim = started.sim;
    socket = p.socket;
    legit = new ExtensionServer({ name: 'fuzz_ext', managerPath: socket, plugins: [fuzzTable()], pingIntervalMs: 0 });
    h.defer(() => legit.stop());
    await legit.start();
    longLived = await ThriftConnection.connect(socket, 'manager', 5_000);
    h.defer(() => longLived.close());
    const uuid = legit.uuid;
    target = {
      path: socket,
      pid: sim.pid,
      healthCheck: async () => {
        expect(sim.exit).toBeUndefined();
        expect(existsSync(`/proc/${sim.pid}`)).toBe(true);
        const fresh = new ExtensionManagerClient(socket, { timeoutMs: 10_000 });
        try {
          expect((await fresh.ping()).code).toBe(0);
          // The legitimate extension is still registered and its table still answers through osqueryd.
          expect((await fresh.extensions()).get(uuid)?.name).toBe('fuzz_ext');
          expect(await fresh.query("select k, v from fuzz_t where k = 'b'")).toEqual([{ k: 'b', v: 'beta' }]);
          expect((await fresh.query('select pid from osquery_info'))[0]?.pid).toBe(String(sim.pid));
        } finally {
          fresh.close();
        }
        expect(longLived.closed).toBe(false);
        expect((await longLived.invoke<ExtensionStatus>('ping', [], 5_000)).code).toBe(0);
      },
    };
  });

  afterAll(async () => {
    await h?.cleanup();
  });

  it(
    `survives ${SINGLE} mutated or random frames, one per connection, without growing`,
    async () => {
      await target.healthCheck();
      const run = new FuzzRun('thrift.osqueryd-sim.single');
      const inputs = singleInputs(run, managerSeeds(), SINGLE);
      // Warm up with the first batch so lazily loaded code and caches are in the baseline.
      await runBatches(run, target, inputs.slice(0, BATCH), true);
      rssStart = rssKiB(sim.pid);
      await runBatches(run, target, inputs.slice(BATCH), true);
      const rssEnd = rssKiB(sim.pid);
      run.count('rss-start-kib', rssStart);
      run.count('rss-end-kib', rssEnd);
      const stats = run.finish();
      expect(stats.failures).toBe(0);
      expect(stats.outcomes['outcome:closed-by-server'] ?? 0).toBeGreaterThan(0);
      expect(rssEnd - rssStart, `osqueryd-sim RSS ${rssStart} → ${rssEnd} KiB`).toBeLessThan(RSS_BOUND_KIB);
    },
    timeoutFor(SINGLE),
  );

  it(
    `survives ${MULTI} connections carrying several valid and mutated frames each`,
    async () => {
      const run = new FuzzRun('thrift.osqueryd-sim.multi');
      await runBatches(run, target, multiInputs(run, managerSeeds(), MULTI), true);
      const rssEnd = rssKiB(sim.pid);
      const stats = run.finish();
      expect(stats.failures).toBe(0);
      expect(rssEnd - rssStart, `osqueryd-sim RSS ${rssStart} → ${rssEnd} KiB`).toBeLessThan(RSS_BOUND_KIB);
      // Still the same process, never restarted.
      expect(sim.exit).toBeUndefined();
    },
    timeoutFor(MULTI),
  );
});
