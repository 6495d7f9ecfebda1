// Issue 4: per-registration limits through a real cgroup, when this machine
// lets us create one (cgroup v1 here; v2 is covered on a fake tree in limits.test.ts).
import { existsSync, readFileSync, rmdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { supervisorGroupName } from '../../src/runtime/cgroup-scope.js';
import { dumpLogs, startRunner, type Harness } from './harness.js';
import { cgroupV1Writable, simAvailable } from './helpers.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

let h: Harness | undefined;
const dirs: string[] = [];
afterEach(async (ctx) => {
  dumpLogs(h, ctx.task.result?.state === 'fail');
  const leaked = (await h?.stop()) ?? [];
  h = undefined;
  for (const d of dirs.splice(0)) {
    try {
      rmdirSync(d);
    } catch {
      /* already gone */
    }
  }
  expect(leaked).toEqual([]);
});

describe.runIf(simAvailable() && cgroupV1Writable())('Runner resource limits via cgroups', () => {
  it('puts a limited registration’s osqueryd in its own cgroup, leaves the other alone, and removes the cgroup with the registration', async () => {
    const group = `ol-it-${process.pid}`;
    h = await startRunner({ limits: { cgroup: 'auto', groupName: group } });
    await h.runner.add({ id: 'capped', limits: { memoryMb: 256, cpuPercent: 30 } });
    await h.runner.add({ id: 'free' });
    const capped = await h.runner.waitHealthy(rid('capped'), 20_000);
    const free = await h.runner.waitHealthy(rid('free'), 20_000);
    expect(capped.limits).toMatchObject({ mode: 'cgroup-v1', memory_mb: 256, cpu_percent: 30 });
    expect(free.limits.mode).toBe('none');
    const cg = readFileSync(`/proc/${capped.pid}/cgroup`, 'utf8');
    const mem = /memory:(.*)$/m.exec(cg)![1]!;
    // <group>/<digest of this root>/<id> (issue 13: unique per supervisor root).
    const scoped = supervisorGroupName(h.root, group);
    expect(mem.endsWith(`/${scoped}/capped`)).toBe(true);
    const memDir = `/sys/fs/cgroup/memory${mem}`;
    const memGroup = `${memDir.slice(0, -`/${scoped}/capped`.length)}/${group}`;
    dirs.push(
      memDir,
      `/sys/fs/cgroup/cpu/${scoped}/capped`,
      memDir.replace(/\/capped$/, ''),
      `/sys/fs/cgroup/cpu/${scoped}`,
      memGroup,
      `/sys/fs/cgroup/cpu/${group}`,
    );
    expect(Number(readFileSync(`${memDir}/memory.limit_in_bytes`, 'utf8'))).toBe(256 * 1024 * 1024);
    expect(readFileSync(`/proc/${free.pid}/cgroup`, 'utf8')).not.toContain(group);
    const argv = readFileSync(`/proc/${capped.pid}/cmdline`, 'utf8').split('\0');
    expect(argv).toContain('--disable_watchdog');
    expect(argv.some((a) => a.startsWith('--watchdog_memory_limit'))).toBe(false);
    await h.runner.remove(rid('capped'));
    expect(existsSync(memDir)).toBe(false);
  });
});
