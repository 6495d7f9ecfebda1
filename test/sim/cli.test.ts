// Issue 3: osqueryd-sim accepts osqueryd's command line (gflags forms, flagfile) and fails like it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimHarness } from './helpers.js';

let h: SimHarness;
beforeEach(() => {
  h = new SimHarness();
});
afterEach(async () => {
  await h.cleanup();
});

describe('osqueryd-sim command line', () => {
  it('prints its version and exits 0', async () => {
    const sim = h.spawn(['--version']);
    expect(await sim.exited).toEqual({ code: 0, signal: null });
    expect(sim.stdout).toBe('osqueryd version 5.12.1-sim\n');
  });

  it('refuses an unknown flag with gflags wording and exit 1', async () => {
    const sim = h.spawn(['--foo=1']);
    expect(await sim.exited).toEqual({ code: 1, signal: null });
    expect(sim.stderr).toContain("ERROR: unknown command line flag 'foo'");
  });

  it('refuses an illegal value, --noflag on a non-bool, and a flag without its value', async () => {
    const illegal = h.spawn(['--watchdog_level=high']);
    const nobool = h.spawn(['--nopidfile']);
    const missing = h.spawn(['--pidfile']);
    expect((await illegal.exited).code).toBe(1);
    expect(illegal.stderr).toContain("ERROR: illegal value 'high' specified for int32 flag 'watchdog_level'");
    expect((await nobool.exited).code).toBe(1);
    expect(nobool.stderr).toContain('ERROR: boolean value (nopidfile) specified for string command line flag');
    expect((await missing.exited).code).toBe(1);
    expect(missing.stderr).toContain("flag '--pidfile' is missing its argument");
  });

  it('takes --flag=value, --flag value, --flag, --noflag and a flagfile; options() reports them', async () => {
    const p = h.paths();
    const flagfile = join(h.dir, 'flags');
    writeFileSync(
      flagfile,
      ['# osquery flagfile', '', '--pack_delimiter=:', '--distributed_interval 9', '--host_identifier=uuid', '--logger_numerics'].join(
        '\n',
      ),
    );
    const { client } = await h.start(p, [
      `--flagfile=${flagfile}`,
      '--distributed_interval',
      '7',
      '--noutc',
      '--verbose',
      '--thrift_timeout=30',
    ]);
    const options = await client.options();
    expect(options.pack_delimiter).toEqual({ value: ':', default_value: '_', type: 'string' });
    expect(options.distributed_interval).toEqual({ value: '7', default_value: '60', type: 'uint64' }); // later on the line wins
    expect(options.host_identifier!.value).toBe('uuid');
    expect(options.logger_numerics!.value).toBe('true');
    expect(options.utc).toEqual({ value: 'false', default_value: 'true', type: 'bool' });
    expect(options.verbose!.value).toBe('true');
    expect(options.extensions_timeout).toEqual({ value: '2', default_value: '3', type: 'string' });
    expect(options.extensions_interval!.type).toBe('string');
    expect(options.disable_distributed).toEqual({ value: 'true', default_value: 'true', type: 'bool' });
    expect(options.flagfile).toBeUndefined(); // a gflags built-in, not an osquery flag
    const rows = await client.query(
      "select name, value, default_value, type from osquery_flags where name in ('pack_delimiter', 'thrift_timeout')",
    );
    expect(rows).toEqual([
      { default_value: '_', name: 'pack_delimiter', type: 'string', value: ':' },
      { default_value: '300', name: 'thrift_timeout', type: 'uint32', value: '30' },
    ]);
  });
});
