/**
 * Last-resort kill of every live osqueryd process group when the supervisor
 * exits. execa's `cleanup` does nothing for detached children, and Linux has
 * no portable way for a grandchild to die with us, so:
 *  - a normal exit, `process.exit()` or an uncaught exception runs the
 *    synchronous 'exit' hook below (SIGKILL to each group);
 *  - SIGTERM/SIGINT are handled by the run group's signal actor, which shuts
 *    down gracefully (and ends with this hook anyway); a second one during the
 *    shutdown calls killGuardedGroups() and exits;
 *  - SIGKILL runs nothing: the next start reaps what the launch records name
 *    (reaper.ts).
 */
const groups = new Set<number>();
let installed = false;

function killAllSync(): void {
  killGuardedGroups();
}

/** SIGKILL every guarded process group now (synchronous); returns how many were signalled. */
export function killGuardedGroups(): number {
  let n = 0;
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
      n += 1;
    } catch {
      // ESRCH: already gone.
    }
  }
  groups.clear();
  return n;
}

/** Track a process group until the returned release function is called. */
export function guardProcessGroup(pgid: number): () => void {
  if (!installed) {
    installed = true;
    process.on('exit', killAllSync);
  }
  groups.add(pgid);
  return () => {
    groups.delete(pgid);
  };
}

/** Process groups currently guarded (for tests and status). */
export function guardedProcessGroups(): number[] {
  return [...groups];
}
