/**
 * What /proc says about a process (Linux). Elsewhere the functions degrade:
 * liveness falls back to kill(pid, 0), the rest returns undefined.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  pid: number;
  state: string;
  pgrp: number;
  /** Start time in clock ticks since boot: with the pid, identifies a process across pid reuse. */
  startTicks: number;
}

export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm is in parentheses and may contain spaces or ')'; fields after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, state: rest[0] ?? '?', pgrp: Number(rest[2]), startTicks: Number(rest[19]) };
}

export function readCmdline(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a.length > 0);
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie (a zombie answers kill(pid, 0) but is dead). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const st = readProcStat(pid);
  return st === undefined || (st.state !== 'Z' && st.state !== 'X');
}

/** Every pid in /proc (empty when there is no /proc). */
export function listPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number);
  } catch {
    return [];
  }
}
