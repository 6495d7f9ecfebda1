// issue 13: a second SIGINT right after the first (or once the graceful stop
// has begun) killed the supervisor at once and orphaned every osqueryd. It
// must SIGKILL every osqueryd process group, then exit; never an orphan.
// Real `bin/launcher run`, three instances, each "osqueryd" a stand-in behind
// a leader that ignores SIGTERM (fixtures/osqueryd-term-deaf.sh), so the
// graceful stop is surely still running when the second signal comes.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LauncherProcess } from '../../bench/reliability/launcher-process.js';
import { isAlive } from '../../bench/reliability/procfs.js';
import { Stage } from '../../bench/reliability/stage.js';
import { waitFor } from '../../bench/reliability/wait.js';
import { REPO } from './helpers.js';

const DEAF = join(REPO, 'test/runtime/fixtures/osqueryd-term-deaf.sh');
const IDS = ['kolide', 'acme', 'globex'];

let stage: Stage | undefined;
let sup: LauncherProcess | undefined;
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && sup) process.stderr.write(`${sup.tail(80)}\n`);
  await sup?.stop(5_000);
  const root = stage?.root;
  const leftovers = root ? processesNaming(root) : [];
  // Anything still running the fixture, whatever its arguments: the self-checkups' `osqueryd --version` probe
  // carries no root in its command line, and once outlived the supervisor (a CI run found three).
  const fixtures = procRows()
    .filter((p) => p.cmdline.includes(DEAF))
    .map(({ pid, pgrp, ppid }) => ({ pid, pgrp, ppid }));
  for (const p of [...leftovers, ...fixtures]) killQuietly(p.pgrp);
  await stage?.cleanup();
  sup = undefined;
  stage = undefined;
  expect(leftovers, 'processes of the root left after the test').toEqual([]);
  expect(fixtures, 'processes running the osqueryd fixture left after the test').toEqual([]);
});

function killQuietly(pgrp: number): void {
  try {
    process.kill(-pgrp, 'SIGKILL');
  } catch {
    /* gone */
  }
}

interface ProcRow {
  pid: number;
  pgrp: number;
  ppid: number;
}

function procRows(): Array<ProcRow & { cmdline: string }> {
  const out: Array<ProcRow & { cmdline: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (f[0] === 'Z' || f[0] === 'X') continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      out.push({ pid, ppid: Number(f[1]), pgrp: Number(f[2]), cmdline });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** Live processes whose command line names `root` (osqueryd and its wrapper carry `--extensions_socket=<root>/s/...`). */
function processesNaming(root: string): ProcRow[] {
  return procRows()
    .filter((p) => p.cmdline.includes(`${root}/`))
    .map(({ pid, pgrp, ppid }) => ({ pid, pgrp, ppid }));
}

/** Live members of any of `groups`. */
function groupMembers(groups: Set<number>): ProcRow[] {
  return procRows()
    .filter((p) => groups.has(p.pgrp))
    .map(({ pid, pgrp, ppid }) => ({ pid, pgrp, ppid }));
}

async function startThree(prefix: string) {
  stage = await Stage.create({ prefix, registrations: IDS });
  sup = LauncherProcess.start({ ...stage.launcherOptions(), osquerydPath: DEAF });
  const healthy = await sup.waitHealthy(IDS);
  const leaders = IDS.map((id) => healthy.get(id)!.pid!);
  const running = processesNaming(stage.root);
  // Each registration's group: the leader (the wrapper) and the stand-in under it.
  expect(new Set(running.map((p) => p.pgrp))).toEqual(new Set(leaders));
  expect(running.length).toBeGreaterThanOrEqual(2 * IDS.length);
  return { sup, stage, leaders, running };
}

function assertNothingLeft(root: string, leaders: number[], running: ProcRow[]): void {
  expect(
    running.filter((p) => isAlive(p.pid)),
    'osqueryd processes alive (by pid)',
  ).toEqual([]);
  expect(processesNaming(root), 'processes naming the root (/proc scan)').toEqual([]);
  expect(groupMembers(new Set(leaders)), 'members of the osqueryd process groups').toEqual([]);
}

describe.runIf(process.platform === 'linux')('second signal during shutdown', () => {
  it('SIGINT twice back to back: the supervisor exits and no osqueryd survives', async () => {
    const { sup, stage, leaders, running } = await startThree('sg1');
    sup.child.kill('SIGINT');
    sup.child.kill('SIGINT');
    const end = await waitFor('the supervisor to exit', () => (sup.running ? undefined : sup.exited), {
      timeoutMs: 30_000,
      intervalMs: 20,
    });
    // The kernel may merge two signals sent this close (one pending standard signal): then the stop is a graceful
    // one (exit 0); otherwise the second one escalates (exit 130). Either way nothing may be left.
    expect([0, 130]).toContain((await end).code);
    await waitFor('osqueryd groups to be gone', () => groupMembers(new Set(leaders)).length === 0, {
      timeoutMs: 5_000,
      intervalMs: 20,
    }).catch(() => undefined);
    assertNothingLeft(stage.root, leaders, running);
  });

  it('SIGINT, then SIGINT again once the graceful stop has begun: every osqueryd group is SIGKILLed, then the supervisor exits', async () => {
    const { sup, stage, leaders, running } = await startThree('sg2');
    sup.child.kill('SIGINT');
    // The graceful stop is under way: every instance is stopping (their leaders ignore SIGTERM for the whole grace period).
    await waitFor('the graceful stop to begin', () => sup.msgCounts.get('runner interrupted'), { timeoutMs: 10_000, intervalMs: 10 });
    await waitFor(
      'every instance stopping',
      () => IDS.every((id) => sup.records().some((r) => r.registration_id === id && r.msg === 'instance stopping')),
      {
        timeoutMs: 10_000,
        intervalMs: 10,
      },
    );
    expect(leaders.every(isAlive), 'osqueryd leaders still alive during the graceful stop').toBe(true);
    sup.child.kill('SIGINT');
    const end = await sup.exited;
    expect(end.code).toBe(130);
    // The supervisor SIGKILLed the groups before exiting: nothing is left to reparent to pid 1.
    await waitFor('osqueryd groups to be gone', () => groupMembers(new Set(leaders)).length === 0, {
      timeoutMs: 5_000,
      intervalMs: 20,
    }).catch(() => undefined);
    assertNothingLeft(stage.root, leaders, running);
  });
});
