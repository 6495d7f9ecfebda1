// Issue 3: --extensions_require as osqueryd does it: log and carry on; exit 78 only via a missing plugin.
import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimHarness } from './helpers.js';

let h: SimHarness;
beforeEach(() => {
  h = new SimHarness();
});
afterEach(async () => {
  await h.cleanup();
});

describe('--extensions_require', () => {
  it('unmet, with --config_plugin naming it: waits --extensions_timeout, then exits 78 and cleans up', async () => {
    const p = h.paths();
    const { sim, client } = await h.start(p, ['--extensions_require=kolide_grpc', '--config_plugin=kolide_grpc', '--extensions_timeout=1']);
    // The manager answers while osqueryd waits for the extension.
    expect((await client.ping()).message).toBe('pong');
    expect(await sim.exited).toEqual({ code: 78, signal: null });
    const lines = sim.stderr.split('\n');
    const warn = lines.findIndex((l) => /^W.* extensions\.cpp:\d+\] Required extension not found or not loaded: kolide_grpc$/.test(l));
    const err = lines.findIndex((l) =>
      /^E.* init\.cpp:\d+\] An error occurred during extension manager startup: Required extension not found or not loaded: kolide_grpc$/.test(
        l,
      ),
    );
    const fatal = lines.findIndex((l) =>
      /^E.* init\.cpp:\d+\] Cannot activate kolide_grpc config plugin: Unknown registry plugin: kolide_grpc$/.test(l),
    );
    expect(warn).toBeGreaterThan(-1);
    expect(err).toBeGreaterThan(warn);
    expect(fatal).toBeGreaterThan(err);
    expect(existsSync(p.socket)).toBe(false);
    expect(existsSync(p.pidfile)).toBe(false);
  });

  it('unmet, with the filesystem config plugin: logs the error and keeps running', async () => {
    const p = h.paths();
    const { sim, client } = await h.start(p, ['--extensions_require=first,second', '--extensions_timeout=1']);
    await sim.waitForStderr(/An error occurred during extension manager startup: Required extension not found or not loaded: first/);
    expect(sim.stderr).not.toContain('not loaded: second'); // the first unmet name ends the wait
    expect(await client.query('select 1 as alive')).toEqual([{ alive: '1' }]);
    expect(sim.exit).toBeUndefined();
  });
});
