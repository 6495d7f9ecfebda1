// Issue 22: a tenant's osqueryd runs in its own mount namespace, where the
// supervisor's root, its secrets and other tenants' directories are covered;
// real processes as root, the stand-in's `file` and `hash` tables reading the
// real filesystem.
import { execa, type ResultPromise } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isolationUnavailableReason } from '../../../src/runtime/instance/isolation.js';
import { dumpLogs, startRunner, type Harness } from '../harness.js';
import { cgroupV1Writable, isAlive, osquerydPath, reapAll, REPO, simAvailable, tempRoot, waitFor } from '../helpers.js';
import { parseRegistrationId as rid } from '../../../src/registration.js';

const canIsolate = process.platform === 'linux' && isolationUnavailableReason() === undefined;

let h: Harness | undefined;
const cleanups: Array<() => void> = [];
afterEach(async (ctx) => {
  dumpLogs(h, ctx.task.result?.state === 'fail');
  const leaked = (await h?.stop()) ?? [];
  h = undefined;
  while (cleanups.length) cleanups.pop()!();
  expect(leaked).toEqual([]);
});

const mountNs = (pid: number | 'self') => readlinkSync(`/proc/${pid}/ns/mnt`);

async function rows(id: string, sql: string): Promise<Array<Record<string, string>>> {
  return h!.runner.query(rid(id), sql, 5_000);
}

describe.runIf(simAvailable() && canIsolate)('filesystem isolation (root, mount namespaces)', () => {
  it('hides the supervisor root, the control key and other tenants from a tenant, not from the vendor; the tenant keeps its own database and the host', async () => {
    h = await startRunner({ vendorId: 'kolide' });
    const root = h.root;
    // A control key stand-in under the root, and a file in another tenant's directory.
    mkdirSync(join(root, 'control'), { recursive: true });
    const keyPath = join(root, 'control', 'server.key');
    writeFileSync(keyPath, 'PRIVATE KEY material\n', { mode: 0o600 });
    await h.runner.add({ id: 'kolide' });
    await h.runner.add({ id: 'acme' });
    await h.runner.add({ id: 'beta' });
    const vendor = await h.runner.waitHealthy(rid('kolide'), 20_000);
    const acme = await h.runner.waitHealthy(rid('acme'), 20_000);
    await h.runner.waitHealthy(rid('beta'), 20_000);
    writeFileSync(join(root, 'registrations', 'beta', 'secret.txt'), 'beta only');

    expect(acme.isolation).toMatchObject({ mode: 'filesystem', disabled_tables: ['curl', 'curl_certificate', 'carves'] });
    expect(vendor.isolation).toMatchObject({ mode: 'none', disabled_tables: [] });
    // Its own mount namespace; the pid is osqueryd's (the stand-in reports its own pid).
    expect(mountNs(acme.pid!)).not.toBe(mountNs('self'));
    expect(mountNs(vendor.pid!)).toBe(mountNs('self'));
    const [info] = await rows('acme', 'select pid from osquery_info');
    expect(Number(info!.pid)).toBe(acme.pid);
    expect(readFileSync(`/proc/${acme.pid}/cmdline`, 'utf8')).toContain('--disable_carver=true');

    const db = `select path from file where path = '${join(root, 'launcher.sqlite')}'`;
    const regs = `select path from file where directory = '${join(root, 'registrations')}'`;
    const key = `select sha256 from hash where path = '${keyPath}'`;
    const other = `select path from file where path = '${join(root, 'registrations', 'beta', 'secret.txt')}'`;
    // The vendor sees all of it.
    expect(await rows('kolide', db)).toHaveLength(1);
    expect((await rows('kolide', regs)).map((r) => r.path).sort()).toEqual(
      ['acme', 'beta', 'kolide'].map((id) => join(root, 'registrations', id)),
    );
    expect(await rows('kolide', key)).toEqual([{ sha256: createHash('sha256').update('PRIVATE KEY material\n').digest('hex') }]);
    expect(await rows('kolide', other)).toHaveLength(1);
    // acme sees none of it: only its own directory is left under <root>/registrations.
    expect(await rows('acme', db)).toEqual([]);
    expect((await rows('acme', regs)).map((r) => r.path)).toEqual([join(root, 'registrations', 'acme')]);
    expect(await rows('acme', key)).toEqual([]);
    expect(await rows('acme', other)).toEqual([]);
    // Not through /proc/<pid>/root of the supervisor or the vendor either (CAP_SYS_PTRACE dropped).
    for (const pid of [process.pid, vendor.pid!]) {
      expect(await rows('kolide', `select path from file where path = '/proc/${pid}/root${keyPath}'`)).toHaveLength(1);
      expect(await rows('acme', `select path from file where path = '/proc/${pid}/root${keyPath}'`)).toEqual([]);
    }
    // …but its own database path and the host's files.
    expect(await rows('acme', `select type from file where path = '${join(root, 'registrations', 'acme', 'osquery.db')}'`)).toHaveLength(1);
    expect(await rows('acme', `select md5 from hash where path = '/etc/os-release'`)).toHaveLength(1);
    // curl is not a table for acme (--disable_tables).
    await expect(rows('acme', `select * from curl where url = 'http://127.0.0.1:1/'`)).rejects.toThrow(/no such table: curl/);
    // Nothing of acme's mounts reached the host.
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(root);

    // Stop reaps osqueryd (and the namespace goes with it).
    const pid = acme.pid!;
    await h.runner.remove(rid('acme'));
    await waitFor('acme osqueryd gone', () => !isAlive(pid), 10_000);
  });

  it('a registration’s own denylist and `isolation: none` are honoured', async () => {
    h = await startRunner({ vendorId: 'kolide' });
    await h.runner.add({ id: 'open', isolation: { mode: 'none', disableTables: ['hash'] } });
    const open = await h.runner.waitHealthy(rid('open'), 20_000);
    expect(open.isolation).toMatchObject({ mode: 'none', disabled_tables: ['hash'] });
    expect(mountNs(open.pid!)).toBe(mountNs('self'));
    await expect(rows('open', `select md5 from hash where path = '/etc/os-release'`)).rejects.toThrow(/no such table: hash/);
    expect(await rows('open', `select path from file where path = '${join(h.root, 'launcher.sqlite')}'`)).toHaveLength(1);
  });
});

describe.runIf(simAvailable())('filesystem isolation unavailable', () => {
  it('starts the instance anyway and says `unavailable` with the reason', async () => {
    h = await startRunner({ isolationHost: { unavailableReason: 'isolation_namespaces is off in the configuration' } });
    await h.runner.add({ id: 'acme' });
    const acme = await h.runner.waitHealthy(rid('acme'), 20_000);
    expect(acme.isolation).toEqual({
      mode: 'unavailable',
      disabled_tables: ['curl', 'curl_certificate', 'carves'],
      reason: 'isolation_namespaces is off in the configuration',
    });
    expect(mountNs(acme.pid!)).toBe(mountNs('self'));
  });

  it('without root the reason names the uid', () => {
    expect(isolationUnavailableReason({ euid: 1000 })).toMatch(/need root.*uid 1000/);
  });
});

describe.runIf(simAvailable() && canIsolate && cgroupV1Writable())('filesystem isolation with cgroup limits', () => {
  it('an isolated osqueryd is still moved into its cgroup with its memory limit', async () => {
    h = await startRunner({ limits: { cgroup: 'auto', groupName: `ol-iso-${process.pid}` } });
    await h.runner.add({ id: 'acme', limits: { memoryMb: 256 } });
    const acme = await h.runner.waitHealthy(rid('acme'), 20_000);
    expect(acme.isolation?.mode).toBe('filesystem');
    expect(acme.limits.mode).toBe('cgroup-v1');
    const mem = /memory:(.*)$/m.exec(readFileSync(`/proc/${acme.pid}/cgroup`, 'utf8'))![1]!;
    expect(mem.endsWith('/acme')).toBe(true);
    expect(Number(readFileSync(`/sys/fs/cgroup/memory${mem}/memory.limit_in_bytes`, 'utf8'))).toBe(256 * 1024 * 1024);
    await h.runner.remove(rid('acme'));
    expect(existsSync(`/sys/fs/cgroup/memory${mem}`)).toBe(false);
  });
});

const SUPERVISOR = join(REPO, 'test/runtime/fixtures/supervisor.mjs');
const QUIET = join(REPO, 'test/runtime/fixtures/osqueryd-quiet.sh');

describe.runIf(simAvailable() && canIsolate)('filesystem isolation across a supervisor SIGKILL', () => {
  const children: ResultPromise[] = [];
  const seen = new Set<number>();
  afterEach(async () => {
    for (const c of children) if (c.pid) seen.add(c.pid);
    const leaked = await reapAll(seen);
    for (const c of children.splice(0)) await c.catch(() => undefined);
    expect(leaked, 'processes left alive').toEqual([]);
  });

  function start(root: string, ids: string[], expected: number, binary: string) {
    const child = execa(process.execPath, [SUPERVISOR, root, binary, ids.join(','), String(expected)], {
      reject: false,
      stdin: 'ignore',
      env: { LAUNCHER_LOG_LEVEL: 'silent' },
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    return async () => {
      const ready = await waitFor(
        'supervisor ready',
        () =>
          out
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l) as { event: string; reaped?: number[]; instances?: Record<string, { pid: number }> })
            .find((e) => e.event === 'ready'),
        30_000,
      );
      for (const i of Object.values(ready.instances ?? {})) seen.add(i.pid);
      return ready;
    };
  }

  it('the next start reaps an isolated osqueryd left by a SIGKILLed supervisor', async () => {
    const t = tempRoot('iso');
    cleanups.push(t.cleanup);
    const first = start(t.dir, ['acme'], 1, QUIET);
    const r1 = await first();
    const orphan = r1.instances!.acme!.pid;
    // The recorded pid is the isolated osqueryd itself (its own mount namespace).
    expect(mountNs(orphan)).not.toBe(mountNs('self'));
    children[0]!.kill('SIGKILL');
    await children[0];
    expect(isAlive(orphan)).toBe(true);
    const r2 = await start(t.dir, [], 1, osquerydPath())();
    expect(r2.reaped).toEqual([orphan]);
    expect(isAlive(orphan)).toBe(false);
    children[1]!.kill('SIGTERM');
    expect((await children[1])?.exitCode).toBe(0);
  });
});
