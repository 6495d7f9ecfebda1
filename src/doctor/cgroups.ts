/**
 * Check: per-instance memory/CPU limits can use cgroups. The runtime
 * (src/runtime/instance/limits.ts) uses a cgroup when one is writable and otherwise
 * falls back to osquery's own watchdog flags, so a missing or read-only
 * cgroup filesystem is a warning, never a failure.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { CheckResult, DoctorContext } from './types.js';

const FALLBACK = "per-instance limits fall back to osquery's watchdog (--watchdog_memory_limit / --watchdog_utilization_limit)";
const REQUIRED = ['memory', 'cpu'] as const;

function writable(path: string): string | undefined {
  try {
    accessSync(path, constants.W_OK);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? errorMessage(err);
  }
}

export async function checkCgroups(ctx: DoctorContext): Promise<CheckResult> {
  const name = 'cgroups';
  const fsRoot = ctx.cgroupRoot;
  const controllersFile = join(fsRoot, 'cgroup.controllers');
  if (existsSync(controllersFile)) {
    let available: string[];
    try {
      available = readFileSync(controllersFile, 'utf8').split(/\s+/).filter(Boolean);
    } catch (err) {
      return { name, status: 'warn', detail: `cannot read ${controllersFile}: ${errorMessage(err)}; ${FALLBACK}` };
    }
    const missing = REQUIRED.filter((c) => !available.includes(c));
    if (missing.length > 0) {
      return {
        name,
        status: 'warn',
        detail: `cgroup v2 at ${fsRoot} lacks the ${missing.join(' and ')} controller${missing.length > 1 ? 's' : ''} (has: ${available.join(' ') || 'none'}); ${FALLBACK}`,
      };
    }
    const denied = writable(fsRoot);
    if (denied) return { name, status: 'warn', detail: `cgroup v2 at ${fsRoot} is not writable (${denied}); ${FALLBACK}` };
    return {
      name,
      status: 'pass',
      detail: `cgroup v2 at ${fsRoot} with memory and cpu controllers, writable (under systemd the unit delegates its cgroup: Delegate=yes)`,
    };
  }
  // cgroup v1: one hierarchy per controller.
  const v1 = { memory: ['memory'], cpu: ['cpu', 'cpu,cpuacct', 'cpuacct,cpu'] };
  const mounts = REQUIRED.map((c) => v1[c].map((d) => join(fsRoot, d)).find((p) => existsSync(join(p, 'cgroup.procs'))));
  if (mounts.every((m) => m !== undefined)) {
    const denied = mounts.map((m) => [m, writable(m!)] as const).filter(([, d]) => d !== undefined);
    if (denied.length > 0)
      return {
        name,
        status: 'warn',
        detail: `cgroup v1 hierarchies not writable: ${denied.map(([m, d]) => `${m} (${d})`).join(', ')}; ${FALLBACK}`,
      };
    return { name, status: 'pass', detail: `cgroup v1 memory and cpu hierarchies at ${mounts.join(', ')}, writable` };
  }
  return { name, status: 'warn', detail: `no cgroup v2 (${controllersFile}) or v1 memory/cpu hierarchy under ${fsRoot}; ${FALLBACK}` };
}
