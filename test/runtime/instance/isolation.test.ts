// Issue 22: a tenant's osqueryd runs in its own mount namespace, where the
// supervisor's root, its secrets and other tenants' directories are covered;
// real processes as root, the stand-in's `file` and `hash` tables reading the
// real filesystem.
import { execa, type ResultPromise } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ISOLATION_GID_MIN, isolationGid, isolationUnavailableReason } from '../../../src/runtime/instance/isolation.js';
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

  it('a tenant cannot walk /proc/<pid>/root (cwd, fd links, mem) of another tenant’s osqueryd; the vendor can; each keeps its own', async () => {
    h = await startRunner({ vendorId: 'kolide' });
    const root = h.root;
    await h.runner.add({ id: 'kolide' });
    await h.runner.add({ id: 'acme' });
    await h.runner.add({ id: 'globex' });
    const vendor = await h.runner.waitHealthy(rid('kolide'), 20_000);
    const acme = await h.runner.waitHealthy(rid('acme'), 20_000);
    const globex = await h.runner.waitHealthy(rid('globex'), 20_000);
    const globexDir = join(root, 'registrations', 'globex');
    writeFileSync(join(globexDir, 'secret.txt'), 'globex only');

    // The credentials the walk depends on: uids 0, a real gid of its own apart from effective and saved gid 0,
    // no CAP_SYS_PTRACE.
    expect(isolationGid('acme')).not.toBe(isolationGid('globex'));
    for (const [id, pid] of [['acme', acme.pid!] as const, ['globex', globex.pid!] as const]) {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(/^Uid:\s+(.*)$/m.exec(status)![1]!.split(/\s+/)).toEqual(['0', '0', '0', '0']);
      expect(/^Gid:\s+(.*)$/m.exec(status)![1]!.split(/\s+/)).toEqual([String(isolationGid(id)), '0', '0', '0']);
      expect((BigInt(`0x${/^CapEff:\s+(\w+)$/m.exec(status)![1]}`) >> 19n) & 1n).toBe(0n);
    }
    expect(readFileSync(`/proc/${vendor.pid}/status`, 'utf8')).toMatch(/^Gid:\s+0\s+0\s+0\s+0$/m);

    const through = `/proc/${globex.pid}/root${globexDir}`;
    const file = `select path from file where path = '${through}/secret.txt'`;
    const listing = `select path from file where directory = '${through}'`;
    const hash = `select sha256 from hash where path = '${through}/secret.txt'`;
    const cwd = `select path from file where directory = '/proc/${globex.pid}/cwd'`;
    const fds = `select path, symlink_target_path from file where directory = '/proc/${globex.pid}/fd'`;
    // The vendor (full capabilities) walks into globex's view…
    expect(await rows('kolide', file)).toHaveLength(1);
    expect((await rows('kolide', listing)).map((r) => r.path)).toContain(`${through}/secret.txt`);
    expect(await rows('kolide', hash)).toEqual([{ sha256: createHash('sha256').update('globex only').digest('hex') }]);
    expect((await rows('kolide', cwd)).length).toBeGreaterThan(0);
    expect((await rows('kolide', fds)).some((r) => r.symlink_target_path !== '')).toBe(true);
    // …acme does not: every path through globex's /proc entry is refused by the kernel.
    expect(await rows('acme', file)).toEqual([]);
    expect(await rows('acme', listing)).toEqual([]);
    expect(await rows('acme', hash)).toEqual([]);
    expect(await rows('acme', cwd)).toEqual([]);
    expect(await rows('acme', `select path from file where path = '/proc/${globex.pid}/root/etc/os-release'`)).toEqual([]);
    // The fd numbers are listed (the directory's mode allows root), the targets are not.
    expect((await rows('acme', fds)).every((r) => r.symlink_target_path === '')).toBe(true);
    expect(await rows('acme', `select md5 from hash where path = '/proc/${globex.pid}/mem'`)).toEqual([]);
    // environ (and maps): this kernel lets CAP_SYS_ADMIN or CAP_PERFMON, which tenants keep, read them without
    // the ptrace credentials. Nothing new to acme: every instance inherits the same environment from the supervisor.
    const environ = async (pid: number) => rows('acme', `select sha256 from hash where path = '/proc/${pid}/environ'`);
    const [theirs] = await environ(globex.pid!);
    if (theirs) expect(theirs).toEqual((await environ(acme.pid!))[0]);
    // Nor the other way round, nor into the supervisor or the vendor.
    const acmeOwn = join(root, 'registrations', 'acme', 'osquery.db');
    expect(await rows('globex', `select path from file where path = '/proc/${acme.pid}/root${acmeOwn}'`)).toEqual([]);
    for (const pid of [process.pid, vendor.pid!]) {
      expect(await rows('acme', `select path from file where directory = '/proc/${pid}/root${root}'`)).toEqual([]);
      expect(await rows('acme', `select path from file where directory = '/proc/${pid}/cwd'`)).toEqual([]);
    }
    // Each tenant still reads its own files, directly and through its own /proc entry.
    expect(await rows('acme', `select path from file where path = '${acmeOwn}'`)).toHaveLength(1);
    expect(await rows('acme', `select path from file where path = '/proc/${acme.pid}/root${acmeOwn}'`)).toHaveLength(1);
    expect(await rows('globex', `select path from file where path = '${globexDir}/secret.txt'`)).toHaveLength(1);
    // The supervisor still reads what it needs of the instance (cmdline, mount namespace).
    expect(readFileSync(`/proc/${globex.pid}/cmdline`, 'utf8')).toContain('--disable_carver=true');
    expect(mountNs(globex.pid!)).not.toBe(mountNs(acme.pid!));
  });

  it('an osqueryd started through a shell wrapper (which sets every gid to the real one) is still closed to other tenants', async () => {
    // dash and bash, started with rgid != egid, set all gids to the real gid: the exec'd osqueryd is then
    // dumpable with gids G,G,G. A gid of its own per tenant still keeps the others' fsgid from matching.
    // (osqueryd-quiet.sh is such a wrapper: `exec bin/osqueryd-sim` from /bin/sh.)
    h = await startRunner({ vendorId: 'kolide', osquerydPath: QUIET });
    await h.runner.add({ id: 'kolide' });
    await h.runner.add({ id: 'acme' });
    await h.runner.add({ id: 'globex' });
    await h.runner.waitHealthy(rid('kolide'), 20_000);
    const acme = await h.runner.waitHealthy(rid('acme'), 20_000);
    const globex = await h.runner.waitHealthy(rid('globex'), 20_000);
    const g = String(isolationGid('globex'));
    expect(/^Gid:\s+(.*)$/m.exec(readFileSync(`/proc/${globex.pid}/status`, 'utf8'))![1]!.split(/\s+/)).toEqual([g, g, g, g]);
    const through = `select path from file where directory = '/proc/${globex.pid}/root${join(h.root, 'registrations', 'globex')}'`;
    expect((await rows('kolide', through)).length).toBeGreaterThan(0);
    expect(await rows('acme', through)).toEqual([]);
    expect(
      await rows('globex', `select path from file where directory = '/proc/${acme.pid}/root${join(h.root, 'registrations', 'acme')}'`),
    ).toEqual([]);
  });

  it('the stand-in still takes its faults from the environment under AT_SECURE (real gid ≠ effective gid)', async () => {
    // glibc's secure mode and Node's (NODE_OPTIONS ignored) do not touch process.env, where OSQUERYD_SIM_FAULTS is read.
    h = await startRunner({ instanceEnv: () => ({ OSQUERYD_SIM_FAULTS: 'crash_on_query=olr-iso-boom' }) });
    await h.runner.add({ id: 'acme' });
    const acme = await h.runner.waitHealthy(rid('acme'), 20_000);
    expect(acme.isolation?.mode).toBe('filesystem');
    const auxv = readFileSync(`/proc/${acme.pid}/auxv`);
    let secure: bigint | undefined;
    for (let i = 0; i + 16 <= auxv.length; i += 16) if (auxv.readBigUInt64LE(i) === 23n) secure = auxv.readBigUInt64LE(i + 8);
    expect(secure).toBe(1n);
    await expect(rows('acme', `select 1 where 'olr-iso-boom' = ''`)).rejects.toThrow();
    await waitFor('acme osqueryd aborted', () => !isAlive(acme.pid!), 10_000);
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

  it('a setpriv that cannot give osqueryd the isolated credentials makes it `unavailable`, naming why', async () => {
    expect(isolationUnavailableReason({ setpriv: '/nonexistent/setpriv' })).toMatch(/setpriv\(1\) cannot run.*CAP_SYS_PTRACE/);
    // A setpriv that ignores its options (runs the command with root's own credentials) is caught by the probe.
    const t = tempRoot('iso-setpriv');
    cleanups.push(t.cleanup);
    const fake = join(t.dir, 'setpriv');
    writeFileSync(fake, '#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n', { mode: 0o755 });
    const reason = isolationUnavailableReason({ setpriv: fake });
    if (!canIsolate) return; // without root the reason is about root, checked below
    expect(reason).toMatch(new RegExp(`gids 0 0 0 0, not real gid ${ISOLATION_GID_MIN}`));
    h = await startRunner({ isolationHost: { setpriv: fake } });
    await h.runner.add({ id: 'acme' });
    const acme = await h.runner.waitHealthy(rid('acme'), 20_000);
    expect(acme.isolation).toMatchObject({ mode: 'unavailable', reason });
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
