// Issue 3: fault injection through OSQUERYD_SIM_FAULTS, for supervisor tests.
import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLauncherError } from '../../src/errors.js';
import { ExtensionServer } from '../../src/osquery/extension-server.js';
import type { DistributedResults } from '../../src/osquery/plugins.js';
import { SimHarness, waitFor, type SimPaths } from './helpers.js';

let h: SimHarness;
beforeEach(() => {
  h = new SimHarness();
});
afterEach(async () => {
  await h.cleanup();
});

const FAULTS = 'OSQUERYD_SIM_FAULTS';

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

describe('OSQUERYD_SIM_FAULTS', () => {
  it('crash_on_query aborts (SIGABRT) when executed SQL contains the marker, after logging it', async () => {
    const p = h.paths();
    const { sim, client } = await h.start(p, [], { [FAULTS]: 'crash_on_query=BOOM_MARKER' });
    expect(await client.query("select 'harmless' as x")).toEqual([{ x: 'harmless' }]);
    const err = await rejection(client.query("select 'BOOM_MARKER' as x"));
    expect(isLauncherError(err, 'E_THRIFT_CONNECTION')).toBe(true);
    expect(await sim.exited).toEqual({ code: null, signal: 'SIGABRT' });
    expect(h.queryLog(p).map((q) => [q.source, q.sql])).toEqual([
      ['query', "select 'harmless' as x"],
      ['query', "select 'BOOM_MARKER' as x"],
    ]);
  });

  it('a distributed query that crashed the process is denylisted on the next start', async () => {
    const p = h.paths();
    const sql = "select 'CRASH_ME' as x";
    const run = async (env: Record<string, string>) => {
      const written: DistributedResults[] = [];
      const ext = new ExtensionServer({
        name: 'dist',
        managerPath: p.socket,
        pingIntervalMs: 0,
        plugins: [
          {
            kind: 'distributed',
            name: 'dist',
            getQueries: async () => ({ queries: { crashy: sql } }),
            writeResults: async (r) => void written.push(r),
          },
        ],
      });
      h.defer(() => ext.stop());
      const started = await h.start(
        p,
        ['--disable_distributed=false', '--distributed_plugin=dist', '--distributed_interval=1', '--extensions_require=dist'],
        env,
      );
      await ext.start();
      return { ...started, written };
    };
    const first = await run({ [FAULTS]: 'crash_on_query=CRASH_ME' });
    expect(await first.sim.exited).toEqual({ code: null, signal: 'SIGABRT' });
    const second = await run({});
    await waitFor(() => second.written.length > 0, 10_000, 'writeResults after restart');
    expect(second.written[0]).toMatchObject({
      queries: { crashy: [] },
      statuses: { crashy: 1 },
      messages: { crashy: 'distributed query is denylisted' },
    });
  });

  it('hang_after_ms: the socket stays open but no request is answered', async () => {
    const p = h.paths();
    const { sim, client } = await h.start(p, [], { [FAULTS]: 'hang_after_ms=1000' });
    await sim.waitForStderr(/Fault injection: hanging after 1000 ms/);
    const err = await rejection(h.client(p.socket).ping(500));
    expect(isLauncherError(err, 'E_THRIFT_TIMEOUT')).toBe(true);
    expect((err as Error).message).toMatch(/^ping on .* timed out after 500 ms$/);
    expect(await rejection(client.query('select 1', 500))).toBeInstanceOf(Error);
    expect(existsSync(p.socket)).toBe(true);
    expect(sim.exit).toBeUndefined();
  });

  it('exit_after_ms: exits 1 without cleaning up (socket and pidfile stay)', async () => {
    const p: SimPaths = h.paths();
    const { sim } = await h.start(p, [], { [FAULTS]: 'exit_after_ms=1500' });
    expect(await sim.exited).toEqual({ code: 1, signal: null });
    expect(existsSync(p.socket)).toBe(true);
    expect(existsSync(p.pidfile)).toBe(true);
  });

  it('grow_memory_mb_per_s with --watchdog_memory_limit: the watchdog stops the worker, non-zero exit', async () => {
    const p = h.paths();
    const { sim } = await h.start(p, ['--watchdog_memory_limit=50', '--watchdog_delay=0'], { [FAULTS]: '{"grow_memory_mb_per_s": 100}' });
    expect(await sim.exited).toEqual({ code: 1, signal: null });
    expect(sim.stderr).toMatch(
      new RegExp(
        `^W.* watcher\\.cpp:\\d+\\] osqueryd worker \\(${sim.pid}\\) stopping: Memory limits exceeded: \\d+ bytes \\(limit is 50MB\\)$`,
        'm',
      ),
    );
    expect(existsSync(p.socket)).toBe(false);
  });

  it('start_delay_ms delays binding the socket', async () => {
    const p = h.paths();
    const t0 = Date.now();
    const sim = h.spawn(h.baseArgs(p), { [FAULTS]: 'start_delay_ms=800' });
    await waitFor(() => existsSync(p.socket), 10_000, 'socket');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(800);
    expect(sim.stderr).toContain('osqueryd started');
  });

  it('hang_on_query: that query never returns, everything else keeps answering (issue 16)', async () => {
    const p = h.paths();
    const { sim, client } = await h.start(p, [], { [FAULTS]: 'hang_on_query=STUCK_MARKER' });
    expect(await rejection(client.query("select 'STUCK_MARKER' as x", 500))).toBeInstanceOf(Error);
    await sim.waitForStderr(/Fault injection: a query containing "STUCK_MARKER" never returns/);
    expect(await h.client(p.socket).query("select 'fine' as x", 2_000)).toEqual([{ x: 'fine' }]);
    expect(sim.exit).toBeUndefined();
  });

  it('scope: faults apply only to a daemon whose --database_path contains the text (or an alternative)', async () => {
    const p = h.paths();
    const { client } = await h.start(p, [], { [FAULTS]: 'crash_on_query=BOOM_MARKER,scope=/no/such/tenant/|/nor/this/' });
    expect(await client.query("select 'BOOM_MARKER' as x")).toEqual([{ x: 'BOOM_MARKER' }]);
    const q = h.paths('b');
    const hit = await h.start(q, [], { [FAULTS]: `crash_on_query=BOOM_MARKER,scope=/nope/|${q.database}` });
    expect(isLauncherError(await rejection(hit.client.query("select 'BOOM_MARKER' as x")), 'E_THRIFT_CONNECTION')).toBe(true);
    expect(await hit.sim.exited).toEqual({ code: null, signal: 'SIGABRT' });
  });

  it('refuses an unknown fault', async () => {
    const sim = h.spawn(h.baseArgs(h.paths()), { [FAULTS]: 'explode=1' });
    expect(await sim.exited).toEqual({ code: 1, signal: null });
    expect(sim.stderr).toContain('OSQUERYD_SIM_FAULTS: unknown fault "explode"');
  });
});
