// Issue 3: osqueryd-sim's process lifecycle: pidfile mutex, --force, stale sockets, clean SIGTERM.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExtensionServer } from '../../src/osquery/extension-server.js';
import { isLauncherError } from '../../src/errors.js';
import { SimHarness } from './helpers.js';

let h: SimHarness;
beforeEach(() => {
  h = new SimHarness();
});
afterEach(async () => {
  await h.cleanup();
});

describe('osqueryd-sim lifecycle', () => {
  it('writes its pidfile and refuses to start while a live osqueryd holds it', async () => {
    const a = h.paths('a');
    const { sim: first } = await h.start(a);
    expect(readFileSync(a.pidfile, 'utf8')).toBe(String(first.pid));
    const second = h.spawn([...h.baseArgs({ ...h.paths('b'), pidfile: a.pidfile })]);
    expect(await second.exited).toEqual({ code: 1, signal: null });
    expect(second.stderr).toMatch(
      /^E\d{4} [\d:.]+ +\d+ init\.cpp:\d+\] osqueryd initialize failed: Pidfile check failed: osqueryd \(\d+\) is already running$/m,
    );
    expect(first.exit).toBeUndefined();
    expect(readFileSync(a.pidfile, 'utf8')).toBe(String(first.pid));
  });

  it('with --force kills the osqueryd named in the pidfile and takes it over', async () => {
    const a = h.paths('a');
    const { sim: first } = await h.start(a);
    const { sim: second } = await h.start({ ...h.paths('b'), pidfile: a.pidfile }, ['--force']);
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(readFileSync(a.pidfile, 'utf8')).toBe(String(second.pid));
  });

  it('overwrites a stale pidfile naming a dead process', async () => {
    const a = h.paths('a');
    writeFileSync(a.pidfile, '999999');
    const { sim } = await h.start(a);
    expect(readFileSync(a.pidfile, 'utf8')).toBe(String(sim.pid));
  });

  it('deletes a stale socket file and every <socket>.* file before binding', async () => {
    const a = h.paths('a');
    writeFileSync(a.socket, 'stale');
    writeFileSync(`${a.socket}.12345`, 'stale extension socket');
    await h.start(a);
    expect(statSync(a.socket).isSocket()).toBe(true);
    expect(existsSync(`${a.socket}.12345`)).toBe(false);
  });

  it('on SIGTERM calls shutdown() on each extension, removes socket and pidfile, exits 0', async () => {
    const a = h.paths('a');
    const { sim } = await h.start(a);
    const ext = new ExtensionServer({ name: 'lifecycle_ext', managerPath: a.socket, plugins: [], pingIntervalMs: 0 });
    h.defer(() => ext.stop());
    const uuid = await ext.start();
    await sim.waitForStderr(new RegExp(`Registering extension \\(lifecycle_ext, ${uuid}, version=, sdk=\\)`));
    sim.proc.kill('SIGTERM');
    expect(await sim.exited).toEqual({ code: 0, signal: null });
    const reason = await ext.done;
    expect(isLauncherError(reason, 'E_SHUTDOWN')).toBe(true);
    expect(existsSync(a.socket)).toBe(false);
    expect(existsSync(`${a.socket}.${uuid}`)).toBe(false);
    expect(existsSync(a.pidfile)).toBe(false);
    expect(sim.stderr).toMatch(/^I\d{4} [\d:.]+ +\d+ init\.cpp:\d+\] osqueryd started \[version=5\.12\.1-sim\]$/m);
    expect(sim.stderr).toMatch(/osqueryd is shutting down \(received SIGTERM\)/);
  });

  it('serves many sequential calls on one connection and many concurrent connections', async () => {
    const a = h.paths('a');
    const { client } = await h.start(a);
    for (let i = 0; i < 20; i++) expect((await client.ping()).message).toBe('pong');
    const others = Array.from({ length: 8 }, () => h.client(a.socket));
    const replies = await Promise.all(others.map((c) => c.query('select 1 as one')));
    expect(replies).toEqual(Array.from({ length: 8 }, () => [{ one: '1' }]));
  });
});
