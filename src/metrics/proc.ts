/**
 * Resource use of one process and its cgroup, read from /proc and the cgroup
 * filesystem on each scrape (Linux; elsewhere every reader returns
 * undefined and the series is left out). Fields and files:
 * docs/protocol/observability.md#proc-and-cgroup-files.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Clock ticks per second of /proc/<pid>/stat's utime/stime (USER_HZ, 100 on every Linux ABI we run on). */
export const USER_HZ = 100;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export interface ProcessUsage {
  /** Resident set size (VmRSS). */
  rssBytes: number | undefined;
  /** User + system CPU time since the process started. */
  cpuSeconds: number | undefined;
}

export function processUsage(pid: number, procRoot = '/proc'): ProcessUsage {
  let cpuSeconds: number | undefined;
  const stat = read(join(procRoot, String(pid), 'stat'));
  if (stat !== undefined) {
    // comm (field 2) is in parentheses and may hold spaces; fields 14 and 15 (utime, stime) count from after it.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    if (Number.isFinite(utime) && Number.isFinite(stime)) cpuSeconds = (utime + stime) / USER_HZ;
  }
  let rssBytes: number | undefined;
  const status = read(join(procRoot, String(pid), 'status'));
  const m = status && /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (m) rssBytes = Number(m[1]) * 1024;
  return { rssBytes, cpuSeconds };
}

export interface CgroupUsage {
  memoryBytes: number | undefined;
  cpuSeconds: number | undefined;
}

/** `/proc/<pid>/cgroup` → controller ('' for the v2 line) → path. */
function cgroupPaths(pid: number, procRoot: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of (read(join(procRoot, String(pid), 'cgroup')) ?? '').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of (m[1] as string).split(',')) out.set(c, m[2] as string);
  }
  return out;
}

const num = (text: string | undefined): number | undefined => {
  const n = text === undefined ? Number.NaN : Number(text.trim());
  return Number.isFinite(n) ? n : undefined;
};

/**
 * Memory and CPU use of the cgroup `pid` is in, for a run whose limits are
 * enforced by a cgroup (`mode` cgroup-v2 / cgroup-v1). A process in a root
 * cgroup (`/`) gets nothing: that would be the whole host.
 */
export function cgroupUsage(pid: number, mode: string, fsRoot = '/sys/fs/cgroup', procRoot = '/proc'): CgroupUsage {
  const none = { memoryBytes: undefined, cpuSeconds: undefined };
  if (mode !== 'cgroup-v2' && mode !== 'cgroup-v1') return none;
  const paths = cgroupPaths(pid, procRoot);
  const usable = (p: string | undefined): p is string => p !== undefined && p !== '/' && !p.includes('..');
  if (mode === 'cgroup-v2') {
    const p = paths.get('');
    if (!usable(p)) return none;
    const dir = join(fsRoot, p);
    const usec = /^usage_usec (\d+)$/m.exec(read(join(dir, 'cpu.stat')) ?? '');
    return { memoryBytes: num(read(join(dir, 'memory.current'))), cpuSeconds: usec ? Number(usec[1]) / 1e6 : undefined };
  }
  const mem = paths.get('memory');
  const acct = paths.get('cpuacct');
  const acctMount = ['cpuacct', 'cpu,cpuacct', 'cpuacct,cpu'].map((c) => join(fsRoot, c)).find((d) => existsSync(join(d, 'cpuacct.usage')));
  const ns = usable(acct) && acctMount ? num(read(join(acctMount, acct, 'cpuacct.usage'))) : undefined;
  return {
    memoryBytes: usable(mem) ? num(read(join(fsRoot, 'memory', mem, 'memory.usage_in_bytes'))) : undefined,
    cpuSeconds: ns === undefined ? undefined : ns / 1e9,
  };
}
