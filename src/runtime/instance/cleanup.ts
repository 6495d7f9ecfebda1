/**
 * Undo steps registered before the thing they undo is acquired (launcher
 * registers the group kill and the file removals before starting osqueryd), so
 * a half-finished launch still cleans up. Steps run last-in first-out, each
 * bounded by a timeout; failures and overruns are logged, never thrown, so
 * one stuck step cannot keep the rest from running.
 */
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log/logger.js';

interface Step {
  name: string;
  run: () => void | Promise<void>;
}

export class CleanupStack {
  private readonly steps: Step[] = [];
  private running: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly stepTimeoutMs: number;

  constructor(log: Logger, stepTimeoutMs = 10_000) {
    this.log = log;
    this.stepTimeoutMs = stepTimeoutMs;
  }

  push(name: string, run: () => void | Promise<void>): void {
    this.steps.push({ name, run });
  }

  /** Run every step once, newest first. Idempotent: later calls join the first. */
  run(): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length > 0) {
        const step = this.steps.pop()!;
        const started = Date.now();
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.stepTimeoutMs)));
        try {
          const result = await Promise.race([
            Promise.resolve()
              .then(step.run)
              .then(() => 'done' as const),
            timeout,
          ]);
          if (result === 'timeout')
            this.log.warn({ step: step.name, timeout_ms: this.stepTimeoutMs }, 'cleanup step timed out; continuing');
        } catch (err) {
          this.log.warn({ step: step.name, err: errorMessage(err) }, 'cleanup step failed; continuing');
        } finally {
          clearTimeout(timer);
        }
        this.log.debug({ step: step.name, ms: Date.now() - started }, 'cleanup step done');
      }
    })();
    return this.running;
  }
}
