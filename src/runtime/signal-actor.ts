/**
 * The run group's signal actor: SIGTERM/SIGINT (by default) end the group with
 * a SignalError; the handlers are removed when the actor is interrupted, so a
 * second signal after shutdown began gets Node's default behaviour (exit).
 */
import { LauncherError } from '../errors.js';
import type { Actor, RunGroup } from './rungroup.js';

/** The first error of a group ended by a signal. Callers check `code === 'E_SHUTDOWN'` and `signal`. */
export class SignalError extends LauncherError {
  readonly signal: NodeJS.Signals;
  constructor(signal: NodeJS.Signals) {
    super('E_SHUTDOWN', `received ${signal}`);
    this.signal = signal;
  }
}

export function signalActor(signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): Actor {
  const handlers = new Map<NodeJS.Signals, () => void>();
  let settle: ((err?: Error) => void) | undefined;
  let interrupted = false;
  const removeHandlers = () => {
    for (const [sig, h] of handlers) process.off(sig, h);
    handlers.clear();
  };
  return {
    name: 'signals',
    execute: () =>
      new Promise<void>((resolve, reject) => {
        if (interrupted) return resolve();
        settle = (err) => {
          removeHandlers();
          if (err) reject(err);
          else resolve();
        };
        for (const sig of signals) {
          const h = () => settle?.(new SignalError(sig));
          handlers.set(sig, h);
          process.on(sig, h);
        }
      }),
    interrupt: () => {
      interrupted = true;
      removeHandlers();
      settle?.();
    },
  };
}

/** Add the signal actor to `group`. */
export function addSignalActor(group: RunGroup, signals?: readonly NodeJS.Signals[]): void {
  group.add(signalActor(signals));
}
