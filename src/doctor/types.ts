/**
 * `launcher doctor`: host checks run before or after installing the
 * launcher. Each check lives in its own module, takes the shared context and
 * returns one result; none of them changes the host beyond a probe file it
 * removes again.
 */
import type { LauncherConfig } from '../config/schema.js';

export type CheckStatus = 'pass' | 'warn' | 'fail';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  /** One or more lines: what was checked, what was found, what to do about it. */
  detail: string;
}

export interface DoctorContext {
  /** The configuration file checked, if any. */
  configPath?: string;
  /** The validated configuration; undefined when there is none or it is invalid. */
  config?: LauncherConfig;
  /** Why there is no configuration: the file is missing, unreadable or invalid. */
  configProblem?: string;
  /** The path was given (--config / $LAUNCHER_CONFIG) rather than the packaged default. */
  configExplicit: boolean;
  env: NodeJS.ProcessEnv;
  /** Bound for each network probe and each program run. */
  timeoutMs: number;
  now: Date;
  /** Where cgroup filesystems are mounted (default /sys/fs/cgroup). */
  cgroupRoot: string;
  /** The runtime's temp directory (socket fallback), default os.tmpdir(). */
  tmpdir: string;
  /** sd_booted(3)'s marker, default /run/systemd/system (tests point it elsewhere). */
  systemdRunDir?: string;
}

export type Check = (ctx: DoctorContext) => Promise<CheckResult>;

const ORDER: Record<CheckStatus, number> = { pass: 0, warn: 1, fail: 2 };

/** The worse of two statuses. */
export function worst(a: CheckStatus, b: CheckStatus): CheckStatus {
  return ORDER[a] >= ORDER[b] ? a : b;
}

/** Collects findings of one check; the result's status is the worst finding. */
export class Findings {
  private status: CheckStatus = 'pass';
  private readonly lines: string[] = [];

  constructor(private readonly name: string) {}

  add(status: CheckStatus, line: string): this {
    this.status = worst(this.status, status);
    this.lines.push(line);
    return this;
  }

  pass(line: string): this {
    return this.add('pass', line);
  }

  warn(line: string): this {
    return this.add('warn', line);
  }

  fail(line: string): this {
    return this.add('fail', line);
  }

  result(): CheckResult {
    return { name: this.name, status: this.status, detail: this.lines.join('\n') };
  }
}

/** Days from `now` until `date` (negative once past), rounded down. */
export function daysUntil(date: Date, now: Date): number {
  return Math.floor((date.getTime() - now.getTime()) / 86_400_000);
}
