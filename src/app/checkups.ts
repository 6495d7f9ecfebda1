/**
 * Self-checkups (issue 18, ADR 0020): the doctor's checks, run inside the
 * supervisor at start and then every `intervalMs` (hourly by default). The
 * checks themselves are injected (`run`): they live in src/doctor, which sits
 * above the app; `launcher run` passes them in. The latest results feed the
 * `kolide_launcher_checkups` state table and `latestCheckups()` (for a metrics
 * gauge); a check whose status changes (and every non-passing check of the
 * first round) is reported once through `onChange`.
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';

export type CheckupStatus = 'pass' | 'warn' | 'fail';

/** One check's outcome, as the doctor reports it (structurally src/doctor/types.ts's CheckResult). */
export interface CheckupResult {
  name: string;
  status: CheckupStatus;
  detail: string;
}

export interface Checkup extends CheckupResult {
  /** Epoch ms of the run that produced this result. */
  checked_at: number;
  /** Epoch ms this check first showed its current status. */
  changed_at: number;
  /** The status before `changed_at`, when there was one. */
  previous_status: CheckupStatus | null;
}

export interface CheckupsOptions {
  run: () => Promise<CheckupResult[]>;
  /** Default one hour; bounded to [1 s, 24 h]. */
  intervalMs?: number;
  onChange?: (changed: Checkup[]) => void;
  logger: Logger;
}

export const CHECKUP_INTERVAL_RANGE_MS = [1_000, 24 * 3600 * 1000] as const;

export class Checkups {
  private readonly results = new Map<string, Checkup>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly intervalMs: number;
  /** Completed rounds (tests and the flare's manifest). */
  rounds = 0;

  constructor(private readonly o: CheckupsOptions) {
    const [lo, hi] = CHECKUP_INTERVAL_RANGE_MS;
    this.intervalMs = Math.min(hi, Math.max(lo, o.intervalMs ?? 3600 * 1000));
  }

  /** The first round now, then one every interval (a round still running is never overlapped). */
  start(): void {
    if (this.stopped || this.timer) return;
    void this.runOnce();
    this.timer = setInterval(() => void this.runOnce(), this.intervalMs);
    this.timer.unref();
  }

  /** No further rounds; a round in progress is awaited at most 2 s (its results are dropped), so shutdown stays quick. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (!this.running) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
  }

  /** The latest result of every check, in the doctor's order. */
  latest(): Checkup[] {
    return [...this.results.values()];
  }

  runOnce(): Promise<void> {
    if (this.running || this.stopped) return this.running ?? Promise.resolve();
    this.running = this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async round(): Promise<void> {
    let results: CheckupResult[];
    try {
      results = await this.o.run();
    } catch (err) {
      results = [{ name: 'checkups', status: 'fail', detail: `the checkups could not run: ${errorMessage(err)}` }];
    }
    if (this.stopped) return;
    const now = Date.now();
    const changed: Checkup[] = [];
    for (const r of results) {
      const prev = this.results.get(r.name);
      const statusChanged = prev ? prev.status !== r.status : r.status !== 'pass';
      const next: Checkup = {
        ...r,
        checked_at: now,
        changed_at: prev && !statusChanged ? prev.changed_at : now,
        previous_status: prev ? (statusChanged ? prev.status : prev.previous_status) : null,
      };
      this.results.set(r.name, next);
      if (statusChanged) changed.push(next);
    }
    this.rounds++;
    const counts = { pass: 0, warn: 0, fail: 0 };
    for (const r of results) counts[r.status]++;
    this.o.logger.info({ ...counts, changed: changed.map((c) => `${c.name}:${c.status}`) }, 'self-checkups done');
    for (const c of changed) {
      const fields = { check: c.name, status: c.status, previous_status: c.previous_status, detail: c.detail };
      if (c.status === 'pass') this.o.logger.info(fields, 'self-checkup passes again');
      else this.o.logger.warn(fields, `self-checkup ${c.status}`);
    }
    if (changed.length > 0) this.o.onChange?.(changed);
  }
}
