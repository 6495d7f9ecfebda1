/**
 * The isolation of one run (issue 22): from the registration's resolved
 * settings and what the host can do, the flags osqueryd gets, the command that
 * starts it (wrapped in its own mount namespace, or not) and the status shown
 * in `ctl get` and `kolide_launcher_instances`.
 */
import {
  isolationFlags,
  isolationUnavailableReason,
  wrapInNamespace,
  type IsolationHost,
  type IsolationState,
  type ResolvedIsolation,
  type WrapInput,
  type WrappedCommand,
} from './isolation.js';

export type { IsolationHost, ResolvedIsolation } from './isolation.js';

export interface InstanceIsolation {
  status: { mode: IsolationState; disabled_tables: string[]; reason?: string };
  flags: string[];
  command(input: WrapInput): WrappedCommand;
}

export function planInstanceIsolation(settings: ResolvedIsolation | undefined, host: IsolationHost = {}): InstanceIsolation {
  const resolved = settings ?? { mode: 'none', disableTables: [], disableCarver: false };
  const flags = isolationFlags(resolved);
  const base = { disabled_tables: [...resolved.disableTables] };
  const plain = (input: WrapInput): WrappedCommand => ({ file: input.osquerydPath, args: [...input.args] });
  if (resolved.mode === 'none') return { status: { mode: 'none', ...base }, flags, command: plain };
  const reason = isolationUnavailableReason(host);
  if (reason) return { status: { mode: 'unavailable', ...base, reason }, flags, command: plain };
  return { status: { mode: 'filesystem', ...base }, flags, command: (input) => wrapInNamespace({ setpriv: host.setpriv, ...input }) };
}
