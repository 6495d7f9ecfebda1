/**
 * What the runtime needs from an osquery extension (the kolide_grpc one in
 * production, a small real one in tests). The runtime never imports
 * `extensions/`: the Runner takes a factory and calls it once per run, so every
 * run gets a fresh extension, owned by its instance (launcher ADR 2024-10-23).
 */
import { LauncherError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type { Plugin, Row } from '../../osquery/plugins.js';
import type { Registration } from '../../store/registrations.js';
import type { ExtensionFlagNames } from './flags.js';
import type { RegistrationId } from '../../registration.js';

export interface InstanceExtension {
  /** Extension name registered with osqueryd and passed as `--extensions_require`. */
  readonly name: string;
  /** Must include one config plugin (it becomes `--config_plugin`); logger/distributed plugins become the matching flags. */
  readonly plugins: readonly Plugin[];
  /** Called before osqueryd is spawned (e.g. start enrolling, start the log loop). */
  start(): void | Promise<void>;
  /** Called once the run is over (osqueryd gone, servers stopped). Must be idempotent. */
  stop(): Promise<void>;
  /** Shown in the instance's status. */
  status?(): Record<string, unknown>;
  /**
   * Called once the run is over and osqueryd is gone (after stop()), with why
   * it ended and the scheduled query osqueryd last said it started (issue 16).
   * A returned note is appended to the run's error in the run history.
   */
  runEnded?(report: RunEndReport): Promise<string | undefined> | string | undefined;
}

/** Why a run ended, as far as what was running in osqueryd matters (issue 16). */
export type RunEndCause =
  /** stop()/kill(): nobody's fault. */
  | 'requested'
  /** osqueryd exited or was killed by a signal on its own. */
  | 'crashed'
  /** The kernel's OOM killer ended it at its memory limit. */
  | 'oom_killed'
  /** It stopped answering (health checks, our extension server's connection). */
  | 'unresponsive'
  /** The extension ended the run (ExtensionContext.endRun), e.g. a query past its deadline. */
  | 'extension'
  /** Anything else (a launch step failed before osqueryd ran anything). */
  | 'other';

export interface RunEndReport {
  cause: RunEndCause;
  /** The run's end reason, when there was one. */
  error?: string;
  /** ms since the epoch. */
  endedAt: number;
  /**
   * The text after `Executing scheduled query ` of the last such glog line in
   * this run's output (`<name>: <sql>`; see docs/protocol/osquery-extensions.md#status-logs),
   * with the time the line was read. Undefined when osqueryd logged none.
   */
  lastScheduled?: { text: string; at: number };
}

/**
 * A read-only view of the run that owns the extension (issue 21): the
 * extension asks its own instance, never the Runner, about its run.
 */
export interface RunView {
  readonly registrationId: RegistrationId;
  readonly runId: string;
  /** When this run started (ms since the epoch). */
  readonly startedAt: number;
  /** osqueryd's `osquery_info.instance_id`, once the run has connected; undefined before. */
  instanceId(): string | undefined;
  /** Whole seconds since osqueryd connected; undefined before it has. */
  uptimeSeconds(): number | undefined;
}

export interface ExtensionContext {
  registrationId: RegistrationId;
  runId: string;
  run: RunView;
  registration: Registration;
  logger: Logger;
  /**
   * SQL on this run's osqueryd as soon as its extension manager answers
   * (before the run is 'running': osqueryd may still be waiting for our
   * config). Rejects with E_SHUTDOWN when the run ends first.
   */
  query(sql: string, timeoutMs: number): Promise<Row[]>;
  /**
   * End this run (osqueryd is terminated at once, as for an unresponsive one;
   * the supervision loop then starts a new run). For the extension's own
   * deadlines, such as a distributed query past `query_timeout_seconds`.
   */
  endRun(reason: Error): void;
}

export type ExtensionFactory = (ctx: ExtensionContext) => InstanceExtension;

/** The osqueryd flags derived from an extension's plugins; E_CONFIG when it has no config plugin. */
export function extensionFlagNames(ext: InstanceExtension): ExtensionFlagNames {
  const byKind = (kind: Plugin['kind']) => ext.plugins.find((p) => p.kind === kind)?.name;
  const configPlugin = byKind('config');
  if (!configPlugin)
    throw new LauncherError('E_CONFIG', `extension ${ext.name} has no config plugin; osqueryd needs one for --config_plugin`);
  const names: ExtensionFlagNames = { extensionName: ext.name, configPlugin };
  const logger = byKind('logger');
  const distributed = byKind('distributed');
  if (logger) names.loggerPlugin = logger;
  if (distributed) names.distributedPlugin = distributed;
  return names;
}
