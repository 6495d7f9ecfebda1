/**
 * SIGHUP and SIGUSR2 while the supervisor runs (issue 18, ADR 0020), and the
 * reload they ask for. What a reload changes is planned in config-reload.ts;
 * this applies it. Reloads never overlap: a SIGHUP that arrives while one
 * runs asks for one more, and any number of further SIGHUPs meanwhile fold
 * into that one (a storm costs at most two reads of the file).
 */
import { isDeepStrictEqual } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import type { LauncherConfig, RegistrationConfig } from '../config/schema.js';
import { errorMessage, isLauncherError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { limitsFromWire, type Registration } from '../registration.js';
import type { Actor } from '../rungroup/rungroup.js';
import type { Runner } from '../runtime/runner.js';
import { planReload, type ReloadPlan } from './config-reload.js';
import { isolationFromConfig } from './isolation-config.js';
import { checkFlags, checkSecrets } from './startup-checks.js';

export type ReloadOutcome =
  | { outcome: 'applied'; plan: ReloadPlan; failed: Array<{ id: string; error: string }> }
  | { outcome: 'rejected'; error: string }
  | { outcome: 'skipped'; reason: string };

export interface ReloadOptions {
  config: LauncherConfig;
  configPath?: string;
  vendorId: string;
  runner: Runner;
  osquerydPath: string;
  logger: Logger;
  /** A registration the file no longer names is gone: its quarantine, update pins and device state too. */
  forget(id: string): void;
  /** A registration whose enroll secret changed enrolls anew: its node key is dropped. */
  reset(id: string): void;
  onApplied(next: LauncherConfig, plan: ReloadPlan): void;
}

/** The runtime's registration input for a config-file registration (as the start seeds it). */
export function inputFromConfig(r: RegistrationConfig) {
  return {
    id: r.id,
    ...(r.enroll_secret ? { enrollSecret: r.enroll_secret } : {}),
    ...(r.enroll_secret_path ? { enrollSecretPath: r.enroll_secret_path } : {}),
    limits: limitsFromWire(r.limits),
    osqueryFlags: r.osquery_flags,
    ...(r.isolation ? { isolation: isolationFromConfig(r.isolation) } : {}),
  };
}

/** Settings of a stored registration and of a config entry, in one comparable shape. */
function comparable(r: Pick<Registration, 'enrollSecret' | 'enrollSecretPath' | 'limits' | 'osqueryFlags' | 'isolation'>): unknown {
  return {
    enrollSecret: r.enrollSecret ?? null,
    enrollSecretPath: r.enrollSecretPath ?? null,
    memoryMb: r.limits.memoryMb ?? null,
    cpuPercent: r.limits.cpuPercent ?? null,
    osqueryFlags: r.osqueryFlags,
    isolationMode: r.isolation?.mode ?? null,
    disableTables: r.isolation?.disableTables ?? null,
  };
}

export class ReloadCoordinator {
  private current: LauncherConfig;
  private running: Promise<ReloadOutcome> | undefined;
  private queued: Promise<ReloadOutcome> | undefined;
  /** Reloads read from the file (tests: a storm folds into few). */
  reads = 0;

  constructor(private readonly o: ReloadOptions) {
    this.current = o.config;
  }

  /** Reload now, or once more after the reload in progress (requests meanwhile share that one). */
  request(): Promise<ReloadOutcome> {
    if (!this.running) {
      this.running = this.reloadOnce().finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    if (!this.queued) {
      this.queued = this.running.then(() => {
        this.queued = undefined;
        return this.request();
      });
    }
    return this.queued;
  }

  /** Wait for any reload in progress (shutdown). */
  async settle(): Promise<void> {
    await this.queued?.catch(() => undefined);
    await this.running?.catch(() => undefined);
  }

  private async reloadOnce(): Promise<ReloadOutcome> {
    const log = this.o.logger;
    const path = this.o.configPath;
    if (path === undefined) {
      log.warn('SIGHUP: this supervisor was not started from a configuration file; nothing to reload');
      return { outcome: 'skipped', reason: 'no configuration file' };
    }
    this.reads++;
    let next: LauncherConfig;
    let plan: ReloadPlan;
    try {
      next = loadConfigFile(path);
      const known = new Set(this.o.runner.registrationsList().map((r) => r.id));
      plan = planReload(this.current, next, known, this.o.vendorId, path);
      // The start-up checks a reload can fail: secret files readable, flags known to the running osqueryd.
      await checkSecrets(next);
      await checkFlags(next, this.o.osquerydPath, log);
    } catch (err) {
      const error = errorMessage(err);
      log.error({ config: path, err: error }, 'configuration reload rejected; nothing changed');
      return { outcome: 'rejected', error };
    }
    const failed: Array<{ id: string; error: string }> = [];
    const attempt = async (id: string, what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        if (isLauncherError(err, 'E_SHUTDOWN')) throw err;
        failed.push({ id, error: errorMessage(err) });
        log.error({ registration_id: id, err: errorMessage(err) }, `configuration reload: could not ${what} ${id}`);
      }
    };
    try {
      for (const id of plan.remove)
        await attempt(id, 'remove', async () => {
          await this.o.runner.remove(id);
          this.o.forget(id);
        });
      const stored = new Map(this.o.runner.registrationsList().map((r) => [r.id, r]));
      const changed: string[] = [];
      for (const r of plan.change) {
        const input = inputFromConfig(r);
        const have = stored.get(r.id);
        if (have && isDeepStrictEqual(comparable(have), comparable({ ...input, limits: input.limits }))) continue;
        changed.push(r.id);
        const newSecret =
          have !== undefined &&
          ((have.enrollSecret ?? null) !== (input.enrollSecret ?? null) ||
            (have.enrollSecretPath ?? null) !== (input.enrollSecretPath ?? null));
        await attempt(r.id, 'restart', () => this.o.runner.replace(input, newSecret ? () => this.o.reset(r.id) : undefined));
      }
      for (const r of plan.add) await attempt(r.id, 'add', () => this.o.runner.add(inputFromConfig(r)));
      this.current = next;
      this.o.onApplied(next, plan);
      log.info(
        {
          config: path,
          added: plan.add.map((r) => r.id),
          removed: plan.remove,
          restarted: changed,
          adopted: plan.adopted,
          failed: failed.map((f) => f.id),
          ...(plan.logLevelChanged ? { log_level: next.log_level } : {}),
        },
        'configuration reloaded',
      );
      if (plan.restartNeeded.length > 0)
        log.warn({ keys: plan.restartNeeded }, 'configuration reload: these settings changed and take effect only after a restart');
      return { outcome: 'applied', plan, failed };
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'configuration reload interrupted by shutdown');
      return { outcome: 'skipped', reason: 'shutting down' };
    }
  }
}

/**
 * SIGHUP → `reload`, SIGUSR2 → `toggleDebug`, while the group runs. Node's
 * default for both is to end the process; with these handlers installed it
 * does not, and once the group ends both are ignored.
 */
let ignoring = false;
/** Install no-op SIGHUP/SIGUSR2 listeners once per process, so neither signal can end it (Node's default action). */
export function ignoreReloadSignals(): void {
  if (ignoring) return;
  ignoring = true;
  const ignore = () => undefined;
  process.on('SIGHUP', ignore);
  process.on('SIGUSR2', ignore);
}

export function reloadSignalsActor(handlers: { reload(): void; toggleDebug(): void }): Actor {
  let finish: (() => void) | undefined;
  let interrupted = false;
  const onHup = () => handlers.reload();
  const onUsr2 = () => handlers.toggleDebug();
  return {
    name: 'reload_signals',
    execute: () =>
      new Promise<void>((resolve) => {
        if (interrupted) return resolve();
        process.on('SIGHUP', onHup);
        process.on('SIGUSR2', onUsr2);
        finish = resolve;
      }),
    interrupt: () => {
      interrupted = true;
      // Ignored from now on (not Node's default, which would end the process and orphan osqueryds mid-shutdown).
      ignoreReloadSignals();
      process.off('SIGHUP', onHup);
      process.off('SIGUSR2', onUsr2);
      finish?.();
    },
  };
}
