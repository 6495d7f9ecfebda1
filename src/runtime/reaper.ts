/**
 * Next-start cleanup after a supervisor that died without cleaning up
 * (SIGKILL, OOM, power loss): kill the osqueryd process groups its launch
 * records and pidfiles name, and remove the stale sockets, pidfiles and
 * records. Run only while holding the supervisor lock (supervisor-lock.ts).
 *
 * A pid is killed only when /proc shows its command line names a manager
 * socket in our socket directory — a recycled pid belonging to something else
 * is left alone. Live processes whose command line names our socket directory
 * but whose records are gone (killed between spawn and the record write) are
 * found by scanning /proc too.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { socketDirCandidates } from './instance/paths.js';
import { isProcessAlive, listPids, readCmdline, readProcStat } from './proc-info.js';
import { signalGroup } from './instance/process.js';
import { removeRunFiles } from './instance/run-files.js';
import { pollUntil } from './instance/wait.js';

export interface ReapResult {
  /** Process groups killed (their leader pid). */
  killed: number[];
  /** Run prefixes (`<dir>/<short>`) whose files were removed. */
  cleaned: string[];
  /** Files that could not be removed. */
  leftovers: string[];
}

function socketArgFor(dir: string, cmdline: string[] | undefined): string | undefined {
  const prefix = `--extensions_socket=${dir}/`;
  return cmdline?.find((a) => a.startsWith(prefix))?.slice('--extensions_socket='.length);
}

function pidsFromRecords(dir: string, short: string): number[] {
  const pids: number[] = [];
  try {
    const rec = JSON.parse(readFileSync(join(dir, `${short}.run`), 'utf8')) as { pid?: unknown };
    if (typeof rec.pid === 'number') pids.push(rec.pid);
  } catch {
    // no record
  }
  try {
    const pid = Number.parseInt(readFileSync(join(dir, `${short}.pid`), 'utf8').trim(), 10);
    if (Number.isInteger(pid) && pid > 0) pids.push(pid);
  } catch {
    // no pidfile
  }
  return pids;
}

export async function reapOrphans(
  root: string,
  options: { logger?: Logger; socketDirs?: string[]; waitMs?: number } = {},
): Promise<ReapResult> {
  const log = options.logger ?? silentLogger();
  const result: ReapResult = { killed: [], cleaned: [], leftovers: [] };
  const ownGroup = readProcStat(process.pid)?.pgrp;
  const dirs = (options.socketDirs ?? socketDirCandidates(root)).filter((d) => existsSync(d));
  const doomed = new Set<number>(); // group ids

  const consider = (pid: number, dir: string, why: string) => {
    if (!isProcessAlive(pid)) return;
    const socket = socketArgFor(dir, readCmdline(pid));
    if (!socket) {
      log.debug({ pid, why }, 'reaper: pid is not one of our osqueryds; left alone');
      return;
    }
    const pgrp = readProcStat(pid)?.pgrp ?? pid;
    if (pgrp === ownGroup || pgrp <= 1) return;
    doomed.add(pgrp);
  };

  for (const dir of dirs) {
    const shorts = new Set(
      readdirSync(dir)
        .map((n) => n.split('.')[0]!)
        .filter(Boolean),
    );
    for (const short of shorts) for (const pid of pidsFromRecords(dir, short)) consider(pid, dir, `record ${short}`);
    for (const pid of listPids()) if (pid !== process.pid) consider(pid, dir, 'proc scan');
  }

  for (const pgrp of doomed) {
    try {
      if (signalGroup(pgrp, 'SIGKILL')) result.killed.push(pgrp);
    } catch (err) {
      log.warn({ pgrp, err: errorMessage(err) }, 'reaper: cannot kill process group');
    }
  }
  if (result.killed.length > 0) {
    log.warn({ groups: result.killed }, 'reaper: killed osqueryd process groups left by a previous supervisor');
    await pollUntil('reaped osqueryd processes to die', () => result.killed.every((p) => !isProcessAlive(p)), {
      timeoutMs: options.waitMs ?? 5_000,
      intervalMs: 20,
    }).catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'reaper: processes still alive after SIGKILL'));
  }

  for (const dir of dirs) {
    const shorts = new Set(
      readdirSync(dir)
        .map((n) => n.split('.')[0]!)
        .filter(Boolean),
    );
    for (const short of shorts) {
      const left = await removeRunFiles(join(dir, `${short}.em`), 3, 50);
      result.cleaned.push(join(dir, short));
      result.leftovers.push(...left);
    }
  }
  if (result.cleaned.length > 0) log.info({ runs: result.cleaned.length }, 'reaper: removed stale run files');
  return result;
}
