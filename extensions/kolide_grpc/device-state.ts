/**
 * A registration's standing with its device server (issue 15): every
 * enrollment and every node-key call (config, log publish, query poll,
 * results) reports here whether it worked. One tracker per registration,
 * kept by the composition root across runs, so a failing enrollment stays
 * visible while osqueryd restarts. A success of an operation clears that
 * operation's failure; the state is `failing` while any failure stands.
 */
import { errorMessage, isLauncherError } from '../../src/errors.js';
import type { DeviceState } from '../../src/state/types.js';

interface Failure {
  message: string;
  since: number;
  at: number;
}

export class DeviceStateTracker {
  private readonly failures = new Map<string, Failure>();

  /** `operation` failed with `err`; calls cut short by a stop or a disable are not failures. */
  failed(operation: string, err: unknown, now = Date.now()): void {
    if (isLauncherError(err, 'E_SHUTDOWN') || isLauncherError(err, 'E_DEVICE_DISABLED')) return;
    const since = this.failures.get(operation)?.since ?? now;
    this.failures.set(operation, { message: errorMessage(err), since, at: now });
  }

  /** Forget every failure (the registration was re-enrolled). */
  reset(): void {
    this.failures.clear();
  }

  succeeded(operation: string): void {
    this.failures.delete(operation);
  }

  /** The state to show, given whether a node key is held and whether the registration is disabled. */
  snapshot(enrolled: boolean, disabled: boolean): DeviceState {
    if (disabled) return { state: 'disabled', error: null, since: null };
    let latest: [string, Failure] | undefined;
    let since = Infinity;
    for (const entry of this.failures) {
      if (!latest || entry[1].at >= latest[1].at) latest = entry;
      since = Math.min(since, entry[1].since);
    }
    if (latest) return { state: 'failing', error: `${latest[0]}: ${latest[1].message}`, since };
    return { state: enrolled ? 'enrolled' : 'enrolling', error: null, since: null };
  }
}
