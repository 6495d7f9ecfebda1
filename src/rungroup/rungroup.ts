/**
 * A run group (oklog/run, launcher `pkg/rungroup`): actors run side by side;
 * the first one to return, for any reason (a clean return too), ends the group.
 * Every actor's `interrupt` is then called, concurrently, with that first
 * error; the group waits a bounded time for the interrupts, then a bounded time
 * for the remaining executes, and settles with the first error.
 *
 * Unlike launcher's, slow actors are named: in a warning, in `stragglers`, and
 * — when the first actor returned cleanly, so no cause would be masked — in the
 * E_TIMEOUT error the group rejects with.
 */
import { LauncherError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log/logger.js';

export interface Actor {
  readonly name: string;
  /** Runs until done or interrupted. Returning (or throwing) ends the group. */
  execute(): Promise<void>;
  /**
   * Make `execute` return soon. Called once per group run, concurrently with the
   * other actors', and possibly after this actor's `execute` already returned.
   */
  interrupt(err?: Error): void | Promise<void>;
}

export interface RunGroupOptions {
  /** How long every interrupt together may take. Default 10 s (launcher). */
  interruptTimeoutMs?: number;
  /** How long, in total, the remaining executes may take to return after the interrupts. Default 5 s (launcher). */
  executeReturnTimeoutMs?: number;
  logger?: Logger;
}

export interface Straggler {
  name: string;
  phase: 'interrupt' | 'execute';
}

export class RunGroup {
  private readonly actors: Actor[] = [];
  private readonly interruptTimeoutMs: number;
  private readonly executeReturnTimeoutMs: number;
  private readonly log: Logger;
  private running = false;
  /** Actors that did not finish in time during the last run. */
  stragglers: Straggler[] = [];

  constructor(options: RunGroupOptions = {}) {
    this.interruptTimeoutMs = options.interruptTimeoutMs ?? 10_000;
    this.executeReturnTimeoutMs = options.executeReturnTimeoutMs ?? 5_000;
    this.log = options.logger ?? silentLogger();
  }

  add(actor: Actor): void {
    if (this.running) throw new LauncherError('E_INVALID_ARGUMENT', `run group already running; cannot add actor ${actor.name}`);
    if (this.actors.some((a) => a.name === actor.name))
      throw new LauncherError('E_ALREADY_EXISTS', `run group already has an actor named ${actor.name}`);
    this.actors.push(actor);
  }

  get size(): number {
    return this.actors.length;
  }

  /** Run every actor; settles as described above. An empty group resolves at once. */
  async run(): Promise<void> {
    if (this.running) throw new LauncherError('E_INVALID_ARGUMENT', 'run group is already running');
    if (this.actors.length === 0) return;
    this.running = true;
    this.stragglers = [];
    try {
      return await this.runActors();
    } finally {
      this.running = false;
    }
  }

  private async runActors(): Promise<void> {
    const finished = new Set<string>();
    let first: { name: string; error: Error | undefined } | undefined;
    let signalFirst!: () => void;
    const firstReturned = new Promise<void>((resolve) => (signalFirst = resolve));

    const executions = this.actors.map((actor) =>
      Promise.resolve()
        .then(() => actor.execute())
        .then(
          () => undefined,
          (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
        )
        .then((error) => {
          finished.add(actor.name);
          if (!first) {
            first = { name: actor.name, error };
            signalFirst();
          } else if (error) {
            this.log.debug({ actor: actor.name, err: errorMessage(error) }, 'actor returned during shutdown');
          }
        }),
    );

    await firstReturned;
    const { name: firstName, error: firstError } = first!;
    this.log.info(
      { actor: firstName, err: firstError ? errorMessage(firstError) : undefined },
      'run group: first actor returned, interrupting all',
    );

    const interrupted = new Set<string>();
    const interrupts = this.actors.map((actor) =>
      Promise.resolve()
        .then(() => actor.interrupt(firstError))
        .catch((err: unknown) => this.log.warn({ actor: actor.name, err: errorMessage(err) }, 'interrupt threw'))
        .then(() => interrupted.add(actor.name)),
    );
    await withDeadline(Promise.all(interrupts), this.interruptTimeoutMs);
    for (const a of this.actors) if (!interrupted.has(a.name)) this.stragglers.push({ name: a.name, phase: 'interrupt' });

    await withDeadline(Promise.all(executions), this.executeReturnTimeoutMs);
    for (const a of this.actors) if (!finished.has(a.name)) this.stragglers.push({ name: a.name, phase: 'execute' });

    if (this.stragglers.length > 0) {
      const names = this.stragglers.map((s) => `${s.name} (${s.phase})`).join(', ');
      this.log.warn({ stragglers: this.stragglers }, `run group: actors did not finish in time: ${names}`);
      if (!firstError) {
        throw new LauncherError(
          'E_TIMEOUT',
          `run group: actors did not finish in time (interrupt ${this.interruptTimeoutMs} ms, execute ${this.executeReturnTimeoutMs} ms): ${names}`,
        );
      }
    }
    if (firstError) throw firstError;
  }
}

/** Resolve when `p` settles or after `ms`, whichever comes first; never rejects. */
function withDeadline(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    p.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}
