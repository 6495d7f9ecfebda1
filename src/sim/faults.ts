/**
 * Fault injection for tests, from the environment variable
 * `OSQUERYD_SIM_FAULTS` (never a flag, so a supervisor's command line is the
 * same as for osqueryd). Off unless the variable is set. See README.md.
 */
import { glog } from './glog.js';

export interface Faults {
  /** Abort (SIGABRT) when any executed SQL contains this marker. */
  crashOnQuery?: string;
  /** A query whose SQL contains this marker never returns (the rest of the daemon keeps answering). */
  hangOnQuery?: string;
  /** Faults apply only to a daemon whose --database_path contains this text, or one of its `|`-separated alternatives (some tenants of a supervisor). */
  scope?: string;
  /** After n ms stop answering Thrift (sockets stay open) and stop all outgoing work. */
  hangAfterMs?: number;
  /** Exit with code 1 after n ms, without any cleanup. */
  exitAfterMs?: number;
  /** Grow the resident set by n MB every second. */
  growMemoryMbPerS?: number;
  /** A memory hog: allocate (and touch) n MB as fast as it can, 8 MB at a time, and keep it. */
  allocateMemoryMb?: number;
  /** Start allocate_memory_mb this many ms after start. Default 0. */
  allocateAfterMs?: number;
  /** Wait n ms before binding the extension manager socket. */
  startDelayMs?: number;
}

const KEYS: Record<string, keyof Faults> = {
  crash_on_query: 'crashOnQuery',
  hang_on_query: 'hangOnQuery',
  scope: 'scope',
  hang_after_ms: 'hangAfterMs',
  exit_after_ms: 'exitAfterMs',
  grow_memory_mb_per_s: 'growMemoryMbPerS',
  allocate_memory_mb: 'allocateMemoryMb',
  allocate_after_ms: 'allocateAfterMs',
  start_delay_ms: 'startDelayMs',
};

/** Parse `{"k": v}` JSON or `k=v,k=v`; throws on an unknown key or a bad number. */
export function parseFaults(text: string | undefined): Faults {
  const out: Faults = {};
  if (!text || text.trim() === '') return out;
  let pairs: Array<[string, unknown]>;
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    pairs = Object.entries(JSON.parse(trimmed) as Record<string, unknown>);
  } else {
    pairs = trimmed
      .split(',')
      .filter(Boolean)
      .map((kv) => {
        const i = kv.indexOf('=');
        return i < 0 ? [kv.trim(), ''] : [kv.slice(0, i).trim(), kv.slice(i + 1)];
      });
  }
  for (const [key, value] of pairs) {
    const field = KEYS[key];
    if (!field) throw new Error(`OSQUERYD_SIM_FAULTS: unknown fault ${JSON.stringify(key)} (known: ${Object.keys(KEYS).join(', ')})`);
    if (field === 'crashOnQuery' || field === 'hangOnQuery' || field === 'scope') {
      if (String(value) === '') throw new Error(`OSQUERYD_SIM_FAULTS: ${key} needs a non-empty value`);
      out[field] = String(value);
    } else {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0)
        throw new Error(`OSQUERYD_SIM_FAULTS: ${key} must be a non-negative number, got ${JSON.stringify(value)}`);
      out[field] = n;
    }
  }
  return out;
}

const NEVER = new Promise<never>(() => undefined);

/** The faults for a daemon with this --database_path: none when `scope` is set and the path does not contain it. */
export function scopedFaults(faults: Faults, databasePath: string): Faults {
  if (faults.scope === undefined) return faults;
  return faults.scope.split('|').some((alt) => alt !== '' && databasePath.includes(alt)) ? faults : {};
}

/** Applies the faults to the running daemon. */
export class FaultController {
  readonly faults: Faults;
  private hungFlag = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly ballast: Buffer[] = [];

  constructor(faults: Faults) {
    this.faults = faults;
  }

  /** True once hang_after_ms has passed: nothing may answer or poll any more. */
  get hung(): boolean {
    return this.hungFlag;
  }

  /** Start the timed faults (call once the daemon starts). */
  start(): void {
    const { hangAfterMs, exitAfterMs, growMemoryMbPerS, allocateMemoryMb, allocateAfterMs } = this.faults;
    if (hangAfterMs !== undefined) {
      this.timers.push(
        setTimeout(() => {
          this.hungFlag = true;
          glog.warning('faults.cpp', 40, `Fault injection: hanging after ${hangAfterMs} ms`);
        }, hangAfterMs),
      );
    }
    if (exitAfterMs !== undefined) {
      this.timers.push(
        setTimeout(() => {
          glog.error('faults.cpp', 48, `Fault injection: exiting with code 1 after ${exitAfterMs} ms`);
          process.exit(1);
        }, exitAfterMs),
      );
    }
    if (growMemoryMbPerS !== undefined && growMemoryMbPerS > 0) {
      // 10 steps a second; fill() touches every page so the RSS really grows.
      const step = Math.max(1, Math.round((growMemoryMbPerS * 1024 * 1024) / 10));
      this.timers.push(setInterval(() => this.ballast.push(Buffer.allocUnsafe(step).fill(1)), 100));
    }
    if (allocateMemoryMb !== undefined && allocateMemoryMb > 0) {
      this.timers.push(setTimeout(() => this.hog(allocateMemoryMb), allocateAfterMs ?? 0));
    }
  }

  /** Allocate `mb` MB in 8 MB steps (a timer tick apart, so the daemon keeps serving meanwhile); fill() touches every page. */
  private hog(mb: number): void {
    const STEP_MB = 8;
    glog.warning('faults.cpp', 60, `Fault injection: allocating ${mb} MB`);
    let left = mb;
    const next = () => {
      if (left <= 0) return;
      const n = Math.min(STEP_MB, left);
      this.ballast.push(Buffer.allocUnsafe(n * 1024 * 1024).fill(1));
      left -= n;
      this.timers.push(setTimeout(next, 5));
    };
    next();
  }

  /** Resolves at once, or never when hung (a request that is never answered). */
  gate(): Promise<void> {
    return this.hungFlag ? NEVER : Promise.resolve();
  }

  /** Called with every SQL text before it runs: aborts on crash_on_query; a promise that never settles on hang_on_query. */
  checkQuery(sql: string): Promise<never> | undefined {
    const marker = this.faults.crashOnQuery;
    if (marker !== undefined && sql.includes(marker)) {
      glog.error('faults.cpp', 70, `Fault injection: aborting on a query containing ${JSON.stringify(marker)}`);
      process.abort();
    }
    const hang = this.faults.hangOnQuery;
    if (hang !== undefined && sql.includes(hang)) {
      glog.warning('faults.cpp', 78, `Fault injection: a query containing ${JSON.stringify(hang)} never returns`);
      return NEVER;
    }
    return undefined;
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
  }
}
