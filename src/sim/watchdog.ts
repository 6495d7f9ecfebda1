/**
 * The memory half of osqueryd's watchdog (docs/protocol/osquery-extensions.md#watchdog). osqueryd runs as a
 * watcher process that forks a worker and kills and respawns it on a limit
 * violation. The stand-in does not fork: it is one process that plays the
 * worker, so a supervisor sees one pid, and it checks itself instead. On a
 * violation it logs the watcher's line and stops (cleanly, as a SIGTERMed
 * worker would) with a non-zero exit code; respawning is the supervisor's job.
 *
 * Every 3 s the resident size is sampled; the first sample is the baseline.
 * Once --watchdog_delay seconds have passed, growth over the baseline beyond
 * --watchdog_memory_limit MB (0: 200 MB, or 100 MB at --watchdog_level=1)
 * is a violation. --disable_watchdog or --watchdog_level=-1 turn it off.
 * The CPU utilization limit is not enforced.
 */
import type { FlagValues } from './flags.js';

export const WATCHDOG_INTERVAL_MS = 3_000;

export class MemoryWatchdog {
  private readonly flags: FlagValues;
  private readonly onViolation: (message: string) => void;
  private timer: NodeJS.Timeout | undefined;

  constructor(flags: FlagValues, onViolation: (message: string) => void) {
    this.flags = flags;
    this.onViolation = onViolation;
  }

  start(): void {
    const level = this.flags.num('watchdog_level');
    if (this.flags.bool('disable_watchdog') || level < 0) return;
    const limitMb = this.flags.num('watchdog_memory_limit') || (level === 1 ? 100 : 200);
    const enforceAt = Date.now() + this.flags.num('watchdog_delay') * 1000;
    const baseline = process.memoryUsage.rss();
    this.timer = setInterval(() => {
      const growth = process.memoryUsage.rss() - baseline;
      if (Date.now() >= enforceAt && growth > limitMb * 1024 * 1024) {
        this.stop();
        this.onViolation(`osqueryd worker (${process.pid}) stopping: Memory limits exceeded: ${growth} bytes (limit is ${limitMb}MB)`);
      }
    }, WATCHDOG_INTERVAL_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
