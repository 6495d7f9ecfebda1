/**
 * The run group's signal actor: SIGTERM/SIGINT (by default) end the group with
 * a SignalError and a graceful shutdown. Once shutdown has begun (a first
 * signal, or the group ending for another reason), a further signal escalates:
 * every osqueryd process group is SIGKILLed at once and the process exits
 * (issue 13: Node's default action on a second SIGINT would exit and orphan
 * every osqueryd).
 */
import { LauncherError } from '../errors.js';
import { killGuardedGroups } from './exit-guard.js';
import type { Actor, RunGroup } from './rungroup.js';

/** The first error of a group ended by a signal. Callers check `code === 'E_SHUTDOWN'` and `signal`. */
export class SignalError extends LauncherError {
  readonly signal: NodeJS.Signals;
  constructor(signal: NodeJS.Signals) {
    super('E_SHUTDOWN', `received ${signal}`);
    this.signal = signal;
  }
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 };
const escalating = new Set<NodeJS.Signals>();

function escalate(signal: NodeJS.Signals): void {
  const killed = killGuardedGroups();
  process.stderr.write(`received ${signal} during shutdown: killed ${killed} osqueryd process group(s) with SIGKILL; exiting now\n`);
  process.exit(128 + (SIGNAL_NUMBERS[signal] ?? 0));
}

/**
 * From now on, `signals` kill every osqueryd group and exit (installed once per
 * signal per process, and kept: Node's signal handles do not keep the process alive).
 */
export function escalateOnSignals(signals: readonly NodeJS.Signals[]): void {
  for (const sig of signals) {
    if (escalating.has(sig)) continue;
    escalating.add(sig);
    process.on(sig, () => escalate(sig));
  }
}

export function signalActor(signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): Actor {
  const handlers = new Map<NodeJS.Signals, () => void>();
  let settle: ((err?: Error) => void) | undefined;
  let interrupted = false;
  const shutdownBegun = () => {
    for (const [sig, h] of handlers) process.off(sig, h);
    handlers.clear();
    // Added during the emit of the first signal, so that signal is not seen twice
    // (EventEmitter calls the listeners it had when emit began).
    escalateOnSignals(signals);
  };
  return {
    name: 'signals',
    execute: () =>
      new Promise<void>((resolve, reject) => {
        if (interrupted) return resolve();
        settle = (err) => {
          shutdownBegun();
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
      shutdownBegun();
      settle?.();
    },
  };
}

/** Add the signal actor to `group`. */
export function addSignalActor(group: RunGroup, signals?: readonly NodeJS.Signals[]): void {
  group.add(signalActor(signals));
}
