/**
 * The supervision loop of one registration: launch a run, wait for it to end,
 * wait the backoff delay, launch the next. Each registration has its own loop,
 * so one tenant failing never delays, restarts or stops another (launcher runs
 * one worker per enrollment too, but with a fixed 10 s retry and no crash-loop
 * report; see ADR 0004).
 */
import { LauncherError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Registration } from '../store/registrations.js';
import { RestartBackoff, type BackoffOptions } from './backoff.js';
import { isFinal } from './instance/instance-state.js';
import type { InstanceStatus, OsqueryInstance, StatusOptions } from './instance/osquery-instance.js';
import { delay } from './instance/wait.js';

/** Loop-level state: the instance's state while a run exists, else one of these. */
export type SupervisorState = 'pending' | 'backoff' | 'stopped' | 'disabled';

export interface RegistrationStatus extends Omit<InstanceStatus, 'state' | 'run_id'> {
  id: string;
  state: InstanceStatus['state'] | SupervisorState;
  run_id: string | null;
  /** Launches after the first one, for any reason. */
  restarts: number;
  /** Restarts asked for (restart(): the control API, a released quarantine, an update move), not failures. */
  requested_restarts: number;
  crash_loop: boolean;
  /** Consecutive failures since the last stable run. */
  consecutive_failures: number;
  /** When the next launch is due while in backoff (epoch ms). */
  next_launch_at: number | null;
  /** The last delays waited, oldest first (at most 10). */
  recent_delays_ms: number[];
}

/** The status of a registration nothing has launched yet. */
export function idleStatus(reg: Registration): RegistrationStatus {
  return {
    id: reg.id,
    state: 'pending',
    run_id: null,
    pid: null,
    started_at: null,
    connected_at: null,
    uptime_seconds: 0,
    healthy: false,
    health_failures: 0,
    last_error: null,
    limits: { mode: 'none', memory_mb: reg.limits.memoryMb ?? null, cpu_percent: reg.limits.cpuPercent ?? null },
    osqueryd_path: '',
    osqueryd_version: null,
    instance_id: null,
    extension: null,
    restarts: 0,
    requested_restarts: 0,
    crash_loop: false,
    consecutive_failures: 0,
    next_launch_at: null,
    recent_delays_ms: [],
  };
}

export interface SupervisorOptions {
  registration: Registration;
  makeInstance: (registration: Registration) => OsqueryInstance;
  backoff?: Partial<BackoffOptions>;
  random?: () => number;
  logger: Logger;
}

export class RegistrationSupervisor {
  readonly id: string;
  readonly registration: Registration;
  private readonly o: SupervisorOptions;
  private readonly backoff: RestartBackoff;
  private readonly stopCtl = new AbortController();
  private wakeCtl = new AbortController();
  private current: OsqueryInstance | undefined;
  private currentLaunch: Promise<void> | undefined;
  private loopDone: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private restartRequested = false;
  private restarts = 0;
  private requestedRestarts = 0;
  private crashLoop = false;
  private nextLaunchAt: number | undefined;
  private readonly recentDelays: number[] = [];
  private stableTimer: NodeJS.Timeout | undefined;
  /** restart() callers waiting for the next run's launch (undefined when the loop stopped instead). */
  private runWaiters: Array<(launch: Promise<void> | undefined) => void> = [];

  constructor(options: SupervisorOptions) {
    this.o = options;
    this.registration = options.registration;
    this.id = options.registration.id;
    this.backoff = new RestartBackoff(options.backoff, options.random);
  }

  get instance(): OsqueryInstance | undefined {
    return this.current;
  }

  get stopped(): boolean {
    return this.stopCtl.signal.aborted;
  }

  /** Start the loop (once). */
  start(): void {
    this.loopDone ??= this.loop().catch((err: unknown) => {
      this.o.logger.error({ err }, 'supervision loop crashed');
    });
  }

  /**
   * End the current run gracefully and launch a new one at once (no backoff;
   * failures are forgotten). Resolves when the new run's launch settled.
   */
  async restart(): Promise<void> {
    if (this.stopped) throw new LauncherError('E_SHUTDOWN', `registration ${this.id} is stopping`);
    this.restartRequested = true;
    this.requestedRestarts += 1;
    this.backoff.reset();
    this.crashLoop = false;
    // Boxed: resolving with a promise would adopt it.
    const next = new Promise<{ launch: Promise<void> | undefined }>((resolve) => this.runWaiters.push((launch) => resolve({ launch })));
    const old = this.current;
    this.wakeCtl.abort();
    if (old && !isFinal(old.state)) await old.stop();
    await (await next).launch?.catch(() => undefined);
  }

  /** Stop the loop and the current run gracefully. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopCtl.abort();
      await this.current?.stop();
      await this.loopDone;
      this.notifyRunWaiters(undefined);
    })();
    return this.stopping;
  }

  /** Stop the loop and SIGKILL the current run. Joins/escalates a stop in progress. */
  async kill(): Promise<void> {
    this.stopCtl.abort();
    await this.current?.kill();
    await this.stop();
  }

  status(options: StatusOptions = {}): RegistrationStatus {
    const inst = this.current;
    const base: RegistrationStatus = {
      ...idleStatus(this.registration),
      restarts: this.restarts,
      requested_restarts: this.requestedRestarts,
      crash_loop: this.crashLoop,
      consecutive_failures: this.backoff.failures,
      next_launch_at: this.nextLaunchAt ?? null,
      recent_delays_ms: [...this.recentDelays],
    };
    if (inst) Object.assign(base, inst.status(options));
    if (this.stopped && (!inst || isFinal(inst.state))) base.state = 'stopped';
    else if (this.nextLaunchAt !== undefined) base.state = 'backoff';
    return base;
  }

  private async loop(): Promise<void> {
    const log = this.o.logger;
    let first = true;
    while (!this.stopped) {
      if (!first) this.restarts += 1;
      first = false;
      const inst = this.o.makeInstance(this.registration);
      this.current = inst;
      this.currentLaunch = inst.launch();
      this.currentLaunch.then(
        () => this.armStableTimer(),
        () => undefined,
      );
      this.notifyRunWaiters(this.currentLaunch);
      const exit = await inst.exited;
      clearTimeout(this.stableTimer);
      if (this.stopped) break;
      if (this.restartRequested) {
        this.restartRequested = false;
        continue;
      }
      const wait = this.backoff.failure(exit.uptimeMs);
      this.crashLoop = this.backoff.crashLoop();
      this.recentDelays.push(wait);
      if (this.recentDelays.length > 10) this.recentDelays.shift();
      (this.crashLoop ? log.error : log.warn).call(
        log,
        { run_id: exit.runId, err: exit.error?.message, delay_ms: wait, failures: this.backoff.failures, crash_loop: this.crashLoop },
        'run ended; relaunching after backoff',
      );
      this.nextLaunchAt = Date.now() + wait;
      this.wakeCtl = new AbortController();
      await delay(wait, this.stopCtl.signal, this.wakeCtl.signal);
      this.nextLaunchAt = undefined;
      this.restartRequested = false;
    }
  }

  private notifyRunWaiters(launch: Promise<void> | undefined): void {
    const waiters = this.runWaiters;
    this.runWaiters = [];
    for (const w of waiters) w(launch);
  }

  /** A run that stays up `stableAfterMs` clears the failure count and the crash-loop flag. */
  private armStableTimer(): void {
    clearTimeout(this.stableTimer);
    this.stableTimer = setTimeout(() => {
      this.backoff.reset();
      this.crashLoop = false;
    }, this.backoff.stableAfterMs);
    this.stableTimer.unref();
  }
}
