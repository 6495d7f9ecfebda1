import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cpuBandwidth, parseProcCgroup, planLimits } from '../../../src/runtime/instance/limits.js';
import { isAlive, reapAll, tempRoot, waitFor } from '../helpers.js';

const cleanups: Array<() => void | Promise<void>> = [];
const started: number[] = [];
afterEach(async () => {
  const leaked = await reapAll(started.splice(0));
  while (cleanups.length) await cleanups.pop()!();
  expect(leaked).toEqual([]);
});
function tmp(): string {
  const t = tempRoot('li');
  cleanups.push(t.cleanup);
  return t.dir;
}

describe('planLimits', () => {
  it('without limits: mode none, watchdog off like launcher’s default', () => {
    const plan = planLimits('a', {});
    expect(plan.mode).toBe('none');
    expect(plan.watchdogFlags).toEqual(['--disable_watchdog', '--distributed_denylist_duration=0']);
  });

  it('with cgroups off: the osquery watchdog flags, and why', () => {
    const plan = planLimits('a', { memoryMb: 300, cpuPercent: 20 }, { cgroup: 'off', watchdogDelaySec: 30 });
    expect(plan.mode).toBe('watchdog');
    expect(plan.watchdogFlags).toEqual(['--watchdog_memory_limit=300', '--watchdog_utilization_limit=20', '--watchdog_delay=30']);
    expect(plan.fallbackReason).toMatch(/disabled/);
  });

  it('falls back to the watchdog when no cgroup hierarchy is usable', () => {
    const fsRoot = tmp();
    const proc = join(fsRoot, 'proc-cgroup');
    writeFileSync(proc, '0::/x\n');
    const plan = planLimits('a', { memoryMb: 300 }, { fsRoot, procSelfCgroup: proc });
    expect(plan.mode).toBe('watchdog');
    expect(plan.fallbackReason).toBeTruthy();
  });

  it('cgroup v2: creates <own>/<group>/<id>, enables controllers, writes memory.max and cpu.max, attaches the pid', async () => {
    const fsRoot = tmp();
    const own = join(fsRoot, 'svc.slice', 'launcher.service');
    mkdirSync(own, { recursive: true });
    writeFileSync(join(fsRoot, 'cgroup.controllers'), 'cpu memory pids');
    writeFileSync(join(own, 'cgroup.controllers'), 'cpu memory pids');
    const proc = join(fsRoot, 'proc-cgroup');
    writeFileSync(proc, '0::/svc.slice/launcher.service\n');
    const plan = planLimits('tenant-a', { memoryMb: 256, cpuPercent: 50 }, { fsRoot, procSelfCgroup: proc, cpuCount: 2, groupName: 'ol' });
    expect(plan.mode).toBe('cgroup-v2');
    expect(plan.watchdogFlags).toContain('--disable_watchdog');
    const dir = join(own, 'ol', 'tenant-a');
    expect(plan.cgroupDirs).toEqual([dir]);
    expect(readFileSync(join(own, 'cgroup.subtree_control'), 'utf8')).toBe('+memory +cpu');
    expect(readFileSync(join(own, 'ol', 'cgroup.subtree_control'), 'utf8')).toBe('+memory +cpu');
    expect(readFileSync(join(dir, 'memory.max'), 'utf8')).toBe(String(256 * 1024 * 1024));
    expect(readFileSync(join(dir, 'cpu.max'), 'utf8')).toBe('100000 100000'); // 50 % of 2 CPUs
    plan.attach(4242);
    expect(readFileSync(join(dir, 'cgroup.procs'), 'utf8')).toBe('4242');
  });

  it('cgroup v1: one directory per controller under the supervisor’s own paths', () => {
    const fsRoot = tmp();
    for (const c of ['memory', 'cpu,cpuacct']) {
      mkdirSync(join(fsRoot, c, 'sup'), { recursive: true });
      writeFileSync(join(fsRoot, c, 'cgroup.procs'), '');
    }
    const proc = join(fsRoot, 'proc-cgroup');
    writeFileSync(proc, '5:memory:/sup\n3:cpu,cpuacct:/sup\n0::/\n');
    const plan = planLimits('b', { memoryMb: 128, cpuPercent: 10 }, { fsRoot, procSelfCgroup: proc, cpuCount: 4, groupName: 'ol' });
    expect(plan.mode).toBe('cgroup-v1');
    const mem = join(fsRoot, 'memory', 'sup', 'ol', 'b');
    const cpu = join(fsRoot, 'cpu,cpuacct', 'sup', 'ol', 'b');
    expect(plan.cgroupDirs).toEqual([mem, cpu]);
    expect(readFileSync(join(mem, 'memory.limit_in_bytes'), 'utf8')).toBe(String(128 * 1024 * 1024));
    expect(readFileSync(join(cpu, 'cpu.cfs_quota_us'), 'utf8')).toBe('40000');
    expect(readFileSync(join(cpu, 'cpu.cfs_period_us'), 'utf8')).toBe('100000');
  });

  it('cgroup v1 with burst support: the burst is the quota by default, written after it; period and ratio configurable', () => {
    const fsRoot = tmp();
    mkdirSync(join(fsRoot, 'cpu', 'sup'), { recursive: true });
    writeFileSync(join(fsRoot, 'cpu', 'cgroup.procs'), '');
    const proc = join(fsRoot, 'proc-cgroup');
    writeFileSync(proc, '3:cpu:/sup\n0::/\n');
    // The kernel (>= 5.14) has the file in every cpu cgroup; a leftover directory may hold an old, larger burst.
    for (const id of ['b', 'c']) {
      mkdirSync(join(fsRoot, 'cpu', 'sup', 'ol', id), { recursive: true });
      writeFileSync(join(fsRoot, 'cpu', 'sup', 'ol', id, 'cpu.cfs_burst_us'), '900000');
    }
    planLimits('b', { cpuPercent: 10 }, { fsRoot, procSelfCgroup: proc, cpuCount: 4, groupName: 'ol' });
    const b = join(fsRoot, 'cpu', 'sup', 'ol', 'b');
    expect(readFileSync(join(b, 'cpu.cfs_period_us'), 'utf8')).toBe('100000');
    expect(readFileSync(join(b, 'cpu.cfs_quota_us'), 'utf8')).toBe('40000');
    expect(readFileSync(join(b, 'cpu.cfs_burst_us'), 'utf8')).toBe('40000');
    planLimits(
      'c',
      { cpuPercent: 10 },
      { fsRoot, procSelfCgroup: proc, cpuCount: 4, groupName: 'ol', cpuPeriodUs: 1_000_000, cpuBurstRatio: 0.5 },
    );
    const c = join(fsRoot, 'cpu', 'sup', 'ol', 'c');
    expect(readFileSync(join(c, 'cpu.cfs_period_us'), 'utf8')).toBe('1000000');
    expect(readFileSync(join(c, 'cpu.cfs_quota_us'), 'utf8')).toBe('400000');
    expect(readFileSync(join(c, 'cpu.cfs_burst_us'), 'utf8')).toBe('200000');
  });

  it('without burst support (no such file) no burst file is made; cgroup v2 writes cpu.max.burst when it exists', () => {
    const fsRoot = tmp();
    mkdirSync(join(fsRoot, 'cpu', 'sup'), { recursive: true });
    writeFileSync(join(fsRoot, 'cpu', 'cgroup.procs'), '');
    const proc = join(fsRoot, 'proc-cgroup');
    writeFileSync(proc, '3:cpu:/sup\n0::/\n');
    planLimits('old', { cpuPercent: 20 }, { fsRoot, procSelfCgroup: proc, cpuCount: 2, groupName: 'ol' });
    expect(readFileSync(join(fsRoot, 'cpu', 'sup', 'ol', 'old', 'cpu.cfs_quota_us'), 'utf8')).toBe('40000');
    expect(existsSync(join(fsRoot, 'cpu', 'sup', 'ol', 'old', 'cpu.cfs_burst_us'))).toBe(false);

    const v2 = tmp();
    const own = join(v2, 'svc');
    mkdirSync(join(own, 'ol', 't'), { recursive: true });
    writeFileSync(join(v2, 'cgroup.controllers'), 'cpu memory');
    writeFileSync(join(own, 'cgroup.controllers'), 'cpu memory');
    writeFileSync(join(own, 'ol', 't', 'cpu.max.burst'), '0');
    const proc2 = join(v2, 'proc-cgroup');
    writeFileSync(proc2, '0::/svc\n');
    const plan = planLimits('t', { cpuPercent: 20 }, { fsRoot: v2, procSelfCgroup: proc2, cpuCount: 2, groupName: 'ol' });
    expect(plan.mode).toBe('cgroup-v2');
    expect(readFileSync(join(own, 'ol', 't', 'cpu.max'), 'utf8')).toBe('40000 100000');
    expect(readFileSync(join(own, 'ol', 't', 'cpu.max.burst'), 'utf8')).toBe('40000');
  });

  it('cpuBandwidth keeps period and burst in the kernel’s bounds', () => {
    expect(cpuBandwidth(20, 2)).toEqual({ periodUs: 100_000, quotaUs: 40_000, burstUs: 40_000 });
    expect(cpuBandwidth(20, 2, { cpuBurstRatio: 0 })).toEqual({ periodUs: 100_000, quotaUs: 40_000, burstUs: 0 });
    expect(cpuBandwidth(20, 2, { cpuBurstRatio: 3 }).burstUs).toBe(40_000); // never above the quota (the kernel refuses it)
    expect(cpuBandwidth(20, 2, { cpuPeriodUs: 5_000_000 }).periodUs).toBe(1_000_000);
    expect(cpuBandwidth(20, 2, { cpuPeriodUs: 10 }).periodUs).toBe(1_000);
    expect(cpuBandwidth(0.1, 1).quotaUs).toBe(1_000); // the kernel's minimum quota
  });

  it('parses /proc/self/cgroup for v1 and v2', () => {
    const m = parseProcCgroup('12:cpu,cpuacct:/a\n4:memory:/b\n1:name=systemd:/c\n0::/d\n');
    expect(m.get('cpu')).toBe('/a');
    expect(m.get('cpuacct')).toBe('/a');
    expect(m.get('memory')).toBe('/b');
    expect(m.get('')).toBe('/d');
  });
});

// Issue 4: limits via a real cgroup when this machine lets us create one.
function realCgroupWritable(): boolean {
  const probe = `/sys/fs/cgroup/memory/ol-probe-${process.pid}`;
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    return existsSync('/sys/fs/cgroup/cpu/cgroup.procs');
  } catch {
    return false;
  }
}

describe.runIf(process.platform === 'linux' && realCgroupWritable())('planLimits on this machine’s cgroup v1', () => {
  it('moves a real process into memory and cpu cgroups with the limits set, and removes them after', async () => {
    const group = `ol-test-${process.pid}`;
    const plan = planLimits('tenant-x', { memoryMb: 200, cpuPercent: 25 }, { groupName: group });
    cleanups.push(async () => {
      await plan.release();
      for (const d of plan.cgroupDirs) {
        try {
          rmdirSync(join(d, '..'));
        } catch {
          /* shared parent still in use */
        }
      }
    });
    expect(plan.mode).toBe('cgroup-v1');
    const child = execa(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { reject: false });
    started.push(child.pid!);
    plan.attach(child.pid!);
    const cg = readFileSync(`/proc/${child.pid}/cgroup`, 'utf8');
    expect(cg).toMatch(new RegExp(`memory:.*/${group}/tenant-x`));
    expect(cg).toMatch(new RegExp(`cpu[^:]*:.*/${group}/tenant-x`));
    const mem = plan.cgroupDirs.find((d) => d.includes('/memory/'))!;
    expect(Number(readFileSync(join(mem, 'memory.limit_in_bytes'), 'utf8'))).toBe(200 * 1024 * 1024);
    // The kernel read back: 25 % of the CPUs per 100 ms period, and (kernel >= 5.14) the same again as burst.
    const cpu = plan.cgroupDirs.find((d) => !d.includes('/memory/'))!;
    const quota = Number(readFileSync(join(cpu, 'cpu.cfs_quota_us'), 'utf8'));
    expect(Number(readFileSync(join(cpu, 'cpu.cfs_period_us'), 'utf8'))).toBe(100_000);
    expect(quota).toBe(Math.round(100_000 * availableParallelism() * 0.25));
    if (existsSync(join(cpu, 'cpu.cfs_burst_us'))) expect(Number(readFileSync(join(cpu, 'cpu.cfs_burst_us'), 'utf8'))).toBe(quota);
    child.kill('SIGKILL');
    await child;
    await waitFor('child gone', () => !isAlive(child.pid!));
    await plan.release();
    for (const d of plan.cgroupDirs) expect(existsSync(d)).toBe(false);
  });
});
