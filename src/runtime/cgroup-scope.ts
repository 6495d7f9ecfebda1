/**
 * Which cgroups belong to one supervisor. Every run's cgroup lives under
 * `<own cgroup>/osquery-launcher/<root digest>/<registration id>`: the digest
 * (12 hex characters of SHA-256 of the root's real path) keeps two
 * supervisors on one host, with different roots but the same registration
 * ids, out of each other's groups (issue 13), and lets a supervisor find its
 * own groups again after a crash: at start and at exit it SIGKILLs whatever is
 * still in them (only osqueryds it spawned are ever moved there) and removes
 * the per-supervisor directory. The shared `osquery-launcher` level is left
 * in place (another supervisor may be creating its group in it).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { delegatedBase } from './instance/cgroup-v2-leaf.js';
import { parseProcCgroup, removeDirs, v1Mount, type LimitsConfig } from './instance/limits.js';
import { isProcessAlive } from './proc-info.js';
import { pollUntil } from './instance/wait.js';

export const DEFAULT_CGROUP_GROUP = 'osquery-launcher';

/** `<base>/<digest of realpath(root)>`: the supervisor's own group name. */
export function supervisorGroupName(root: string, base = DEFAULT_CGROUP_GROUP): string {
  let real: string;
  try {
    real = realpathSync(root);
  } catch {
    real = resolve(root);
  }
  return `${base}/${createHash('sha256').update(real).digest('hex').slice(0, 12)}`;
}

/** The limits config every run of this supervisor uses: the group name made unique to `root`. */
export function scopeLimits(root: string, config: LimitsConfig = {}): LimitsConfig {
  if (config.cgroup === 'off') return config;
  return { ...config, groupName: supervisorGroupName(root, config.groupName ?? DEFAULT_CGROUP_GROUP) };
}

/** The supervisor's group directory in each hierarchy planLimits would use (existing or not). */
export function supervisorGroupDirs(config: LimitsConfig): string[] {
  if (config.cgroup === 'off' || process.platform !== 'linux' || !config.groupName) return [];
  const fsRoot = config.fsRoot ?? '/sys/fs/cgroup';
  let paths: Map<string, string>;
  try {
    paths = parseProcCgroup(readFileSync(config.procSelfCgroup ?? '/proc/self/cgroup', 'utf8'));
  } catch {
    return [];
  }
  if (existsSync(join(fsRoot, 'cgroup.controllers')) && paths.has(''))
    return [join(fsRoot, delegatedBase(paths.get('')!), config.groupName)];
  const dirs: string[] = [];
  for (const controller of ['memory', 'cpu'] as const) {
    const mount = v1Mount(fsRoot, controller);
    if (mount) dirs.push(join(mount, paths.get(controller) ?? '/', config.groupName));
  }
  return dirs;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(dir, e.name));
  } catch {
    return [];
  }
}

function procsOf(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * SIGKILL every process left in the supervisor's groups, remove the
 * per-registration groups and the supervisor's directory. Returns the pids
 * killed. Never throws (best effort, bounded).
 */
export async function clearSupervisorGroups(dirs: readonly string[], log: Logger, waitMs = 5_000): Promise<number[]> {
  const killed = new Set<number>();
  for (const dir of dirs) {
    for (const group of [dir, ...subdirs(dir)]) {
      for (const pid of procsOf(group)) {
        try {
          process.kill(pid, 'SIGKILL');
          killed.add(pid);
        } catch {
          // already gone
        }
      }
    }
  }
  if (killed.size > 0) {
    log.warn({ pids: [...killed] }, 'cgroups: killed processes left in this supervisor’s cgroups');
    await pollUntil('processes in our cgroups to die', () => [...killed].every((p) => !isProcessAlive(p)), {
      timeoutMs: waitMs,
      intervalMs: 20,
    }).catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'cgroups: processes still alive after SIGKILL'));
  }
  for (const dir of dirs) await removeDirs([...subdirs(dir), dir]);
  const left = dirs.filter((d) => existsSync(d));
  if (left.length > 0) log.warn({ dirs: left }, 'cgroups: could not remove this supervisor’s cgroup directories');
  return [...killed];
}
