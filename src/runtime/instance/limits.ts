/**
 * Per-registration resource limits. With limits configured and a writable
 * cgroup below the supervisor's own, osqueryd runs in
 * `<own cgroup>/<groupName>/<registration id>` with memory and CPU caps the
 * kernel enforces; otherwise we fall back to osquery's own watchdog flags
 * (docs/protocol/device.md#watchdog-flags). Without limits the watchdog is off, as in launcher. The mode in force is reported in the instance status.
 *
 * cgroup v2: the supervisor's cgroup must be delegated (systemd `Delegate=yes`)
 * and hold no processes of its own besides what the kernel allows; when
 * enabling controllers fails (EBUSY, EACCES) we fall back and say why.
 * cgroup v1: one directory per controller (memory, cpu).
 *
 * osqueryd is moved into the cgroup right after spawn; the watchdog worker it
 * forks later inherits it. `groupName` may have several segments: the Runner
 * makes it unique per supervisor root (cgroup-scope.ts), so two supervisors
 * on one host never share a group. The plan reads the memory cgroup's OOM-kill
 * counter so an exit can be told apart from any other SIGKILL (issue 13).
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LauncherError, errorMessage } from '../../errors.js';
import type { ResourceLimits } from '../../store/registrations.js';
import { delegatedBase } from './cgroup-v2-leaf.js';

export type LimitsMode = 'cgroup-v2' | 'cgroup-v1' | 'watchdog' | 'none';

export interface LimitsConfig {
  /** 'auto' (default): a cgroup when one is writable, else watchdog flags. 'off': watchdog flags only. */
  cgroup?: 'auto' | 'off';
  /** Default `/sys/fs/cgroup`. */
  fsRoot?: string;
  /** Default `/proc/self/cgroup`. */
  procSelfCgroup?: string;
  /** Directory (relative path) created under the supervisor's cgroup. Default `osquery-launcher`. */
  groupName?: string;
  /** `--watchdog_delay` in watchdog mode (s). Default 120 (launcher). */
  watchdogDelaySec?: number;
  /** CPUs the percentage is relative to. Default os.availableParallelism(). */
  cpuCount?: number;
  /**
   * The CFS bandwidth period (µs) the CPU percentage is enforced over: the quota is `percent` of it. Default 100 000
   * (the kernel's). The kernel accepts 1 000 – 1 000 000.
   */
  cpuPeriodUs?: number;
  /**
   * Saved-up quota an instance that was idle may spend at once, as a fraction of the quota (0 – 1; the kernel allows at
   * most the quota). Default 1. The long-run average stays at the percentage; only unused quota is carried over, so a
   * busy instance never gets more. cgroup v1 `cpu.cfs_burst_us`, v2 `cpu.max.burst` (kernel ≥ 5.14); skipped where the
   * file does not exist. See adr/0025-cpu-burst-for-start-up.md.
   */
  cpuBurstRatio?: number;
}

export interface LimitsPlan {
  mode: LimitsMode;
  /** Goes into osqueryd's command line (flags.ts). */
  watchdogFlags: string[];
  /** cgroup directories used (one for v2, one per controller for v1). */
  cgroupDirs: string[];
  /** The cgroup holding the memory limit, when there is one. */
  memoryDir?: string;
  /** OOM kills the kernel counted in the memory cgroup so far; undefined without one (or when unreadable). */
  oomKills(): number | undefined;
  /** Why a cgroup was not used, when limits fell back to the watchdog. */
  fallbackReason?: string;
  /** Move `pid` into the cgroup(s). Throws E_LAUNCH when that fails. No-op without cgroups. */
  attach(pid: number): void;
  /** Remove the cgroup directories once their processes are gone (best effort, bounded). */
  release(): Promise<void>;
}

const CPU_PERIOD_US = 100_000;
const MIN_PERIOD_US = 1_000;
const MAX_PERIOD_US = 1_000_000;

function hasLimits(l: ResourceLimits): boolean {
  return l.memoryMb !== undefined || l.cpuPercent !== undefined;
}

/** The CPU bandwidth settings for one cgroup: quota and burst per period (µs). */
export interface CpuBandwidth {
  periodUs: number;
  quotaUs: number;
  burstUs: number;
}

export function cpuBandwidth(
  percent: number,
  cpus: number,
  config: Pick<LimitsConfig, 'cpuPeriodUs' | 'cpuBurstRatio'> = {},
): CpuBandwidth {
  const periodUs = Math.min(MAX_PERIOD_US, Math.max(MIN_PERIOD_US, Math.round(config.cpuPeriodUs ?? CPU_PERIOD_US)));
  const quotaUs = Math.max(1_000, Math.round((periodUs * cpus * percent) / 100));
  const ratio = Math.min(1, Math.max(0, config.cpuBurstRatio ?? 1));
  return { periodUs, quotaUs, burstUs: Math.floor(quotaUs * ratio) };
}

/**
 * Write the burst last: the kernel tops the group's runtime up by one quota (capped at quota + burst) on every write
 * of these files, so a fresh cgroup starts with its burst available, as a long-idle one has it. A kernel without
 * burst support has no such file; one that refuses the value (EINVAL) keeps the plain quota. Measured on this
 * kernel (6.x, v1): a fresh group with quota 40 ms / 100 ms and burst 40 ms ran a busy loop with `burst_time` 40 ms
 * and one throttled period fewer than without.
 */
function writeBurst(file: string, burstUs: number): void {
  if (!existsSync(file)) return;
  try {
    write(file, String(burstUs));
  } catch {
    // refused: the quota alone still holds
  }
}

/** `/proc/self/cgroup` → controller (or '' for v2) → path. */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const controllers = m[1]!;
    if (controllers === '') out.set('', m[2]!);
    for (const c of controllers.split(',')) if (c) out.set(c, m[2]!);
  }
  return out;
}

function watchdogFlags(l: ResourceLimits, delaySec: number): string[] {
  const flags: string[] = [];
  if (l.memoryMb !== undefined) flags.push(`--watchdog_memory_limit=${l.memoryMb}`);
  if (l.cpuPercent !== undefined) flags.push(`--watchdog_utilization_limit=${l.cpuPercent}`);
  flags.push(`--watchdog_delay=${delaySec}`);
  return flags;
}

const WATCHDOG_OFF = ['--disable_watchdog', '--distributed_denylist_duration=0'];

function write(path: string, value: string): void {
  writeFileSync(path, value);
}

/** rmdir each of `dirs` (deepest first is the caller's job), retrying while the kernel still counts processes in it. */
export async function removeDirs(dirs: readonly string[]): Promise<void> {
  // Processes take a moment to leave a cgroup after SIGKILL; rmdir says EBUSY until then.
  for (const dir of dirs) {
    for (let attempt = 0; attempt < 20 && existsSync(dir); attempt++) {
      try {
        rmdirSync(dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EBUSY' && code !== 'ENOTEMPTY') return;
        await sleep(50);
      }
    }
  }
}

/** `oom_kill N` from memory.oom_control (v1) or memory.events (v2). */
export function readOomKills(file: string): number | undefined {
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function planV2(fsRoot: string, own: string, group: string, id: string, l: ResourceLimits, cpus: number, c: LimitsConfig): string[] {
  const ownDir = join(fsRoot, own);
  const needed = [l.memoryMb !== undefined ? 'memory' : '', l.cpuPercent !== undefined ? 'cpu' : ''].filter(Boolean);
  const available = readFileSync(join(ownDir, 'cgroup.controllers'), 'utf8').split(/\s+/);
  const missing = needed.filter((c) => !available.includes(c));
  if (missing.length > 0) throw new Error(`controllers ${missing.join(',')} not available in ${ownDir}`);
  const groupDir = join(ownDir, group);
  mkdirSync(groupDir, { recursive: true });
  const enable = needed.map((c) => `+${c}`).join(' ');
  // Every level from our own cgroup down to the group hands the controllers on.
  let level = ownDir;
  write(join(level, 'cgroup.subtree_control'), enable);
  for (const segment of group.split('/').filter(Boolean)) {
    level = join(level, segment);
    write(join(level, 'cgroup.subtree_control'), enable);
  }
  const dir = join(groupDir, id);
  mkdirSync(dir, { recursive: true });
  if (l.memoryMb !== undefined) write(join(dir, 'memory.max'), String(l.memoryMb * 1024 * 1024));
  if (l.cpuPercent !== undefined) {
    const bw = cpuBandwidth(l.cpuPercent, cpus, c);
    writeBurst(join(dir, 'cpu.max.burst'), 0); // a leftover burst above the new quota would be refused
    write(join(dir, 'cpu.max'), `${bw.quotaUs} ${bw.periodUs}`);
    writeBurst(join(dir, 'cpu.max.burst'), bw.burstUs);
  }
  return [dir];
}

export function v1Mount(fsRoot: string, controller: 'memory' | 'cpu'): string | undefined {
  const candidates = controller === 'cpu' ? ['cpu', 'cpu,cpuacct', 'cpuacct,cpu'] : ['memory'];
  return candidates.map((c) => join(fsRoot, c)).find((p) => existsSync(join(p, 'cgroup.procs')));
}

function planV1(
  fsRoot: string,
  paths: Map<string, string>,
  group: string,
  id: string,
  l: ResourceLimits,
  cpus: number,
  c: LimitsConfig,
): string[] {
  const dirs: string[] = [];
  const make = (controller: 'memory' | 'cpu'): string => {
    const mount = v1Mount(fsRoot, controller);
    if (!mount) throw new Error(`no cgroup v1 ${controller} hierarchy under ${fsRoot}`);
    const dir = join(mount, paths.get(controller) ?? '/', group, id);
    mkdirSync(dir, { recursive: true });
    dirs.push(dir);
    return dir;
  };
  if (l.memoryMb !== undefined) {
    const dir = make('memory');
    const bytes = String(l.memoryMb * 1024 * 1024);
    write(join(dir, 'memory.limit_in_bytes'), bytes);
    // With swap accounting, cap memory+swap too: otherwise a hog swaps instead of meeting the limit.
    if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) {
      try {
        write(join(dir, 'memory.memsw.limit_in_bytes'), bytes);
      } catch {
        // not allowed here: the memory limit alone still holds
      }
    }
  }
  if (l.cpuPercent !== undefined) {
    const dir = make('cpu');
    const bw = cpuBandwidth(l.cpuPercent, cpus, c);
    // A directory left over from an earlier run may hold a burst above the new quota, which the kernel would refuse.
    writeBurst(join(dir, 'cpu.cfs_burst_us'), 0);
    write(join(dir, 'cpu.cfs_period_us'), String(bw.periodUs));
    write(join(dir, 'cpu.cfs_quota_us'), String(bw.quotaUs));
    writeBurst(join(dir, 'cpu.cfs_burst_us'), bw.burstUs);
  }
  return dirs;
}

/**
 * Decide how `limits` are enforced for one run and prepare the cgroup. Never
 * throws for an unusable cgroup: it falls back to watchdog flags and records
 * the reason.
 */
export function planLimits(registrationId: string, limits: ResourceLimits, config: LimitsConfig = {}): LimitsPlan {
  const noop = { attach: () => undefined, release: async () => undefined, cgroupDirs: [] as string[], oomKills: () => undefined };
  if (!hasLimits(limits)) return { mode: 'none', watchdogFlags: [...WATCHDOG_OFF], ...noop };
  const delay = config.watchdogDelaySec ?? 120;
  const fallback = (reason: string | undefined): LimitsPlan => {
    const plan: LimitsPlan = { mode: 'watchdog', watchdogFlags: watchdogFlags(limits, delay), ...noop };
    if (reason) plan.fallbackReason = reason;
    return plan;
  };
  if (config.cgroup === 'off' || process.platform !== 'linux')
    return fallback(config.cgroup === 'off' ? 'cgroups disabled by configuration' : 'not Linux');

  const fsRoot = config.fsRoot ?? '/sys/fs/cgroup';
  const group = config.groupName ?? 'osquery-launcher';
  const cpus = config.cpuCount ?? availableParallelism();
  let mode: LimitsMode;
  let dirs: string[];
  try {
    const paths = parseProcCgroup(readFileSync(config.procSelfCgroup ?? '/proc/self/cgroup', 'utf8'));
    if (existsSync(join(fsRoot, 'cgroup.controllers')) && paths.has('')) {
      mode = 'cgroup-v2';
      dirs = planV2(fsRoot, delegatedBase(paths.get('')!), group, registrationId, limits, cpus, config);
    } else if (paths.has('memory') || paths.has('cpu')) {
      mode = 'cgroup-v1';
      dirs = planV1(fsRoot, paths, group, registrationId, limits, cpus, config);
    } else {
      return fallback(`no cgroup hierarchy found (${fsRoot})`);
    }
  } catch (err) {
    return fallback(`cgroup not usable: ${errorMessage(err)}`);
  }
  const memoryDir =
    limits.memoryMb === undefined
      ? undefined
      : mode === 'cgroup-v2'
        ? dirs[0]
        : dirs.find((d) => d.startsWith(`${v1Mount(fsRoot, 'memory') ?? '\0'}/`));
  const oomFile = memoryDir && join(memoryDir, mode === 'cgroup-v2' ? 'memory.events' : 'memory.oom_control');
  return {
    mode,
    watchdogFlags: [...WATCHDOG_OFF],
    cgroupDirs: dirs,
    ...(memoryDir ? { memoryDir } : {}),
    oomKills: () => (oomFile ? readOomKills(oomFile) : undefined),
    attach: (pid) => {
      for (const dir of dirs) {
        try {
          write(join(dir, 'cgroup.procs'), String(pid));
        } catch (err) {
          throw new LauncherError('E_LAUNCH', `cannot move osqueryd pid ${pid} into cgroup ${dir}: ${errorMessage(err)}`, { cause: err });
        }
      }
    },
    release: () => removeDirs(dirs),
  };
}
