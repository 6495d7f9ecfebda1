// issue 13: cgroups on this host's writable cgroup v1 hierarchy, with real
// processes. (1) The cgroup path was `.../osquery-launcher/<id>` for every
// supervisor on a host, so two supervisors with the same registration id
// shared a group; it is now unique per supervisor root. (2) An OOM kill was
// recorded only as "killed by SIGKILL"; the run history now says oom_killed.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LauncherProcess } from '../../bench/reliability/launcher-process.js';
import { Stage } from '../../bench/reliability/stage.js';
import { supervisorGroupDirs, supervisorGroupName } from '../../src/runtime/cgroup-scope.js';
import { parseProcCgroup } from '../../src/runtime/instance/limits.js';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dumpLogs, startRunner, type Harness } from './harness.js';
import { isAlive, simAvailable, tempRoot, waitFor } from './helpers.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

/** Our own memory and cpu cgroups (v1) accept a new child directory. */
function cgroupV1Writable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return 'cgroup v2 host (v2 is covered on a fake tree in limits.test.ts)';
  const own = parseProcCgroup(readFileSync('/proc/self/cgroup', 'utf8'));
  for (const [controller, mount] of [
    ['memory', 'memory'],
    ['cpu', 'cpu'],
  ] as const) {
    const probe = join('/sys/fs/cgroup', mount, own.get(controller) ?? '/', `ol-probe-${process.pid}`);
    try {
      mkdirSync(probe);
      rmdirSync(probe);
    } catch (err) {
      return `no writable cgroup v1 ${controller} hierarchy (${String(err)})`;
    }
  }
  return undefined;
}
const skipReason = simAvailable() ? cgroupV1Writable() : 'stand-in not built';
if (skipReason) process.stderr.write(`cgroup-scope.test.ts skipped: ${skipReason}\n`);

/** `controller` → cgroup path of `pid`. */
function cgroupsOf(pid: number): Map<string, string> {
  return parseProcCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
}

function procsIn(dir: string): number[] {
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number).sort();
}

/** Live members of process group `pgid` (the stand-in leads its own group; anything it forks stays in its cgroup). */
function groupPids(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out.sort();
}

const stages: Stage[] = [];
const sups: LauncherProcess[] = [];
let h: Harness | undefined;
/** Test-only top-level group directories (the runner removes only its own per-root level). */
const topDirs: string[] = [];
afterEach(async (ctx) => {
  const failed = ctx.task.result?.state === 'fail';
  if (failed) for (const s of sups) process.stderr.write(`${s.tail(60)}\n`);
  dumpLogs(h, failed);
  for (const s of sups.splice(0)) await s.stop(10_000);
  const leaked: number[] = [];
  for (const st of stages.splice(0)) leaked.push(...(await st.cleanup()));
  leaked.push(...((await h?.stop()) ?? []));
  h = undefined;
  for (const d of topDirs.splice(0)) {
    try {
      rmdirSync(d);
    } catch {
      /* not created, or in use */
    }
  }
  expect(leaked).toEqual([]);
});

describe.skipIf(skipReason !== undefined)('cgroups per supervisor (real cgroup v1)', () => {
  it('two supervisors with different roots and the same registration id get distinct cgroups; stopping one leaves the other’s alone', async () => {
    const limited = (id: string) => ({ id, enroll_secret: `secret-${id}`, limits: { memory_mb: 256, cpu_percent: 50 } });
    const launch = async (prefix: string) => {
      const stage = await Stage.create({ prefix, registrations: ['acme'] });
      stages.push(stage);
      const sup = LauncherProcess.start({
        ...stage.launcherOptions(),
        config: { registrations: [limited('acme')] },
      });
      sups.push(sup);
      const acme = (await sup.waitHealthy(['acme'])).get('acme')!;
      return { stage, sup, pid: acme.pid! };
    };
    const a = await launch('cga');
    const b = await launch('cgb');
    const cgA = cgroupsOf(a.pid);
    const cgB = cgroupsOf(b.pid);
    for (const controller of ['memory', 'cpu']) {
      expect(cgA.get(controller)!.endsWith(`/${supervisorGroupName(a.stage.root)}/acme`), `${controller} cgroup of A`).toBe(true);
      expect(cgB.get(controller)!.endsWith(`/${supervisorGroupName(b.stage.root)}/acme`), `${controller} cgroup of B`).toBe(true);
      expect(cgA.get(controller)).not.toBe(cgB.get(controller));
    }
    const dirsA = supervisorGroupDirs({ groupName: supervisorGroupName(a.stage.root) });
    const dirsB = supervisorGroupDirs({ groupName: supervisorGroupName(b.stage.root) });
    expect(dirsA).toHaveLength(2);
    // Each group holds only its own osqueryd's processes.
    for (const [dirs, own] of [
      [dirsA, a.pid],
      [dirsB, b.pid],
    ] as const) {
      for (const d of dirs) expect(procsIn(join(d, 'acme'))).toEqual(groupPids(own));
    }
    // Stopping A removes A's groups (and its per-supervisor directory) and touches nothing of B's.
    expect((await a.sup.stop()).code).toBe(0);
    for (const d of dirsA) expect(existsSync(d), `${d} removed`).toBe(false);
    expect(isAlive(b.pid)).toBe(true);
    for (const d of dirsB) expect(procsIn(join(d, 'acme'))).toEqual(groupPids(b.pid));
    expect(await b.sup.client.getInstance('acme')).toMatchObject({ pid: b.pid, healthy: true });
    expect((await b.sup.stop()).code).toBe(0);
    for (const d of dirsB) expect(existsSync(d), `${d} removed`).toBe(false);
  });

  it('an osqueryd the kernel OOM-kills at its memory limit is recorded as oom_killed; a plain kill -9 is not', async () => {
    const group = `ol-oom-${process.pid}`;
    topDirs.push(...supervisorGroupDirs({ groupName: group }));
    h = await startRunner({
      limits: { cgroup: 'auto', groupName: group },
      instanceEnv: (reg) => (reg.id === 'hog' ? { OSQUERYD_SIM_FAULTS: 'allocate_memory_mb=2048,allocate_after_ms=200' } : undefined),
      backoff: { quickRestartMs: 60_000, initialMs: 60_000, maxMs: 60_000 },
    });
    await h.runner.add({ id: 'hog', limits: { memoryMb: 128 } });
    await h.runner.add({ id: 'calm', limits: { memoryMb: 128 } });
    const hogRun = await waitFor('the hog’s run to end', () => h!.runner.history(rid('hog'), 1).find((r) => r.exitedAt), 30_000);
    expect(hogRun.limitsMode).toBe('cgroup-v1');
    expect(hogRun.exitSignal).toBe('SIGKILL');
    expect(hogRun.error).toMatch(
      /^oom_killed: osqueryd pid \d+ was killed by the kernel OOM killer at its memory limit \(128 MB, cgroup-v1; killed by SIGKILL/,
    );
    expect(h.status('hog').last_error).toBe(hogRun.error);

    const calm = await h.runner.waitHealthy(rid('calm'), 20_000);
    process.kill(calm.pid!, 'SIGKILL');
    const calmRun = await waitFor('calm’s run to end', () => h!.runner.history(rid('calm'), 1).find((r) => r.exitedAt), 20_000);
    expect(calmRun).toMatchObject({ exitSignal: 'SIGKILL' });
    expect(calmRun.error).toMatch(/^osqueryd pid \d+ killed by SIGKILL while running/);
  });

  it('a new supervisor on the same root kills what a dead predecessor left in its cgroups and removes them; another root’s groups are untouched', async () => {
    const group = `ol-reap-${process.pid}`;
    topDirs.push(...supervisorGroupDirs({ groupName: group }));
    const mine = tempRoot('cr');
    const other = tempRoot('co');
    const dirsMine = supervisorGroupDirs({ groupName: supervisorGroupName(mine.dir, group) });
    const dirsOther = supervisorGroupDirs({ groupName: supervisorGroupName(other.dir, group) });
    // Left behind: a process (say, something osqueryd forked) in each root's per-registration group.
    const strays = [mine, other].map(() => spawn('sleep', ['300'], { stdio: 'ignore', detached: true }));
    const [strayMine, strayOther] = strays.map((c) => c.pid!);
    try {
      for (const [dirs, pid] of [
        [dirsMine, strayMine],
        [dirsOther, strayOther],
      ] as const) {
        for (const d of dirs) {
          mkdirSync(join(d, 'acme'), { recursive: true });
          writeFileSync(join(d, 'acme', 'cgroup.procs'), String(pid));
        }
      }
      h = await startRunner({ limits: { cgroup: 'auto', groupName: group } }, mine.dir);
      expect(h.runner.reaped?.killed).toContain(strayMine);
      await waitFor('the stray of this root to die', () => !isAlive(strayMine!), 5_000);
      for (const d of dirsMine) expect(existsSync(join(d, 'acme')), `${d}/acme removed`).toBe(false);
      expect(isAlive(strayOther!)).toBe(true);
      for (const d of dirsOther) expect(procsIn(join(d, 'acme'))).toEqual([strayOther]);
    } finally {
      for (const c of strays) c.kill('SIGKILL');
      await waitFor('strays gone', () => strays.every((c) => !isAlive(c.pid!)), 5_000);
      for (const d of dirsOther)
        for (const x of [join(d, 'acme'), d]) {
          try {
            rmdirSync(x);
          } catch {
            /* gone */
          }
        }
      other.cleanup();
    }
  });
});
