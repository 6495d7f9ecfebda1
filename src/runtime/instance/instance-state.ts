/**
 * The life of one osqueryd run, as a string union with the legal moves.
 * Every change goes through `StateMachine.set`, which logs it.
 */
import { LauncherError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';

export type InstanceState =
  /** Constructed; launch() not called yet. */
  | 'new'
  /** Preparing directories, limits and the extension; spawning osqueryd. */
  | 'starting'
  /** osqueryd spawned: waiting for its socket, connecting, registering our extension. */
  | 'connecting'
  /** Extension registered and the last health check (if any) passed. */
  | 'running'
  /** Running, but the last health check failed (fewer than the allowed failures in a row). */
  | 'unhealthy'
  /** Ending: servers stopping, process group terminating, files being removed. */
  | 'stopping'
  /** Ended because stop()/kill() was asked for. */
  | 'exited'
  /** Ended by an error: launch failure, osqueryd exit, failed health checks, manager gone. */
  | 'failed';

const NEXT: Record<InstanceState, readonly InstanceState[]> = {
  new: ['starting', 'stopping'],
  starting: ['connecting', 'stopping'],
  connecting: ['running', 'stopping'],
  running: ['unhealthy', 'stopping'],
  unhealthy: ['running', 'stopping'],
  stopping: ['exited', 'failed'],
  exited: [],
  failed: [],
};

export function isLive(state: InstanceState): boolean {
  return state === 'running' || state === 'unhealthy';
}

export function isFinal(state: InstanceState): boolean {
  return state === 'exited' || state === 'failed';
}

export class StateMachine {
  private current: InstanceState = 'new';
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  get state(): InstanceState {
    return this.current;
  }

  /** Move to `next`; a same-state call is a no-op, an illegal move is our bug: E_INTERNAL. */
  set(next: InstanceState, detail?: Record<string, unknown>): void {
    if (next === this.current) return;
    if (!NEXT[this.current].includes(next)) {
      throw new LauncherError('E_INTERNAL', `illegal instance state change ${this.current} → ${next}`);
    }
    const level = next === 'failed' || next === 'unhealthy' ? 'warn' : 'info';
    this.log[level]({ from: this.current, to: next, ...detail }, `instance ${next}`);
    this.current = next;
  }
}
