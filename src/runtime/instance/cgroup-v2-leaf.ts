/**
 * cgroup v2 under systemd (`Delegate=yes`, adr/0005): the unit's cgroup is
 * ours, but cgroup v2's "no internal processes" rule forbids enabling
 * controllers for children of a cgroup that itself holds processes. So at
 * start the supervisor moves every process of its cgroup (itself, and
 * anything systemd started with it) into a leaf `<own>/supervisor`, then
 * enables the wanted controllers (memory, cpu) in `<own>/cgroup.subtree_control`
 * so the per-registration groups limits.ts creates below `<own>` can use them.
 * Afterwards /proc/self/cgroup says `<own>/supervisor`; `delegatedBase` maps
 * that back to `<own>`, which is where the registration groups live.
 *
 * Never throws: what could not be done is reported (the caller logs it and
 * limits.ts falls back to watchdog flags for controllers that are missing).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { errorMessage } from '../../errors.js';

export const SUPERVISOR_LEAF = 'supervisor';

export interface LeafOptions {
  /** Where cgroup2 is mounted (default /sys/fs/cgroup). */
  fsRoot?: string;
  /** Default /proc/self/cgroup. */
  procSelfCgroup?: string;
  /** Controllers to enable for the children (default memory, cpu). */
  controllers?: readonly string[];
}

export interface LeafResult {
  /** The delegated cgroup (path below the mount), when on cgroup v2. */
  base?: string;
  /** Processes moved into the leaf now (0 when already there). */
  moved: number;
  /** Controllers enabled in the base's subtree_control (already enabled included). */
  enabled: string[];
  /** Controllers that could not be enabled, each with its reason. */
  skipped: { controller: string; reason: string }[];
  /** Why nothing was done at all (not cgroup v2, the move failed). */
  reason?: string;
}

/** The cgroup v2 path (the `0::` line) of /proc/<pid>/cgroup, or undefined. */
export function unifiedPath(procCgroup: string): string | undefined {
  return /^0::(\/.*)$/m.exec(procCgroup)?.[1];
}

/** The cgroup whose children are the registration groups: `<own>` even after the move into `<own>/supervisor`. */
export function delegatedBase(own: string): string {
  return basename(own) === SUPERVISOR_LEAF ? dirname(own) : own;
}

function procs(dir: string): number[] {
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

export function enterSupervisorLeaf(options: LeafOptions = {}): LeafResult {
  const fsRoot = options.fsRoot ?? '/sys/fs/cgroup';
  const wanted = options.controllers ?? ['memory', 'cpu'];
  const result: LeafResult = { moved: 0, enabled: [], skipped: [] };
  if (!existsSync(join(fsRoot, 'cgroup.controllers')))
    return { ...result, reason: `not cgroup v2 (${join(fsRoot, 'cgroup.controllers')} does not exist)` };
  let own: string | undefined;
  try {
    own = unifiedPath(readFileSync(options.procSelfCgroup ?? '/proc/self/cgroup', 'utf8'));
  } catch (err) {
    return { ...result, reason: `cannot read our cgroup: ${errorMessage(err)}` };
  }
  if (!own) return { ...result, reason: 'no cgroup v2 entry in /proc/self/cgroup' };
  const base = delegatedBase(own);
  result.base = base;
  const baseDir = join(fsRoot, base);
  const leafDir = join(baseDir, SUPERVISOR_LEAF);
  try {
    mkdirSync(leafDir, { recursive: true });
    // Bounded: a process started meanwhile shows up on the next pass; three passes are plenty.
    for (let pass = 0; pass < 3; pass++) {
      const left = procs(baseDir);
      if (left.length === 0) break;
      for (const pid of left) {
        try {
          writeFileSync(join(leafDir, 'cgroup.procs'), String(pid));
          result.moved++;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      }
    }
  } catch (err) {
    return { ...result, reason: `cannot move the supervisor into ${leafDir}: ${errorMessage(err)}` };
  }
  let available: string[] = [];
  try {
    available = readFileSync(join(baseDir, 'cgroup.controllers'), 'utf8').split(/\s+/).filter(Boolean);
  } catch (err) {
    return { ...result, reason: `cannot read ${join(baseDir, 'cgroup.controllers')}: ${errorMessage(err)}` };
  }
  for (const controller of wanted) {
    if (!available.includes(controller)) {
      result.skipped.push({ controller, reason: `not delegated to ${baseDir} (its cgroup.controllers: ${available.join(' ') || 'none'})` });
      continue;
    }
    try {
      writeFileSync(join(baseDir, 'cgroup.subtree_control'), `+${controller}`);
      result.enabled.push(controller);
    } catch (err) {
      result.skipped.push({ controller, reason: `enabling it in ${join(baseDir, 'cgroup.subtree_control')} failed: ${errorMessage(err)}` });
    }
  }
  return result;
}
