/**
 * The control API's view of the supervisor: a thin adapter from ControlTarget
 * to the Runner, with instance and history rows taken from the same
 * LiveState the state tables read.
 */
import { LauncherError, errorMessage } from '../errors.js';
import { limitsFromWire, type RegistrationId } from '../registration.js';
import type { Runner } from '../runtime/runner.js';
import type {
  AddRegistrationInput,
  ControlTarget,
  HealthInfo,
  InstanceInfo,
  OutputSource,
  QuarantineState,
  RunRecord,
  UpdateControl,
  VersionInfo,
} from '../control/target.js';
import { launcherVersion } from '../version.js';
import { API_VERSION } from '../control/features.js';
import type { LiveState } from './state-source.js';
import { isolationFromConfig } from './isolation-config.js';

/** What enrollment needs from the composition root. */
export interface EnrollHooks {
  /** Throws a clear E_CONFIG error when the supervisor cannot read the secret file. */
  checkSecretFile(id: string, path: string): Promise<void>;
  /** Drop a removed registration's device standing. */
  forget(id: string): void;
  /** Forget a re-enrolled registration's node key and failures (its instance is stopped). */
  reset(id: string): void;
  /** Release a quarantined query of a registration (issue 16). */
  releaseQuarantine?(id: RegistrationId, query: string): Promise<QuarantineState[]>;
}

export class RunnerControlTarget implements ControlTarget {
  /** issue 17: the update service's rpcs (set by the composition root). */
  update?: UpdateControl;

  constructor(
    private readonly runner: Runner,
    private readonly state: LiveState,
    private readonly hooks?: EnrollHooks,
  ) {}

  version(): VersionInfo {
    return {
      serverVersion: launcherVersion(),
      apiVersion: API_VERSION,
      features: ['state-tables', 'resource-limits', 'device-state', 're-enroll'],
    };
  }

  health(): HealthInfo {
    const instances = this.state.instances().map((i) => ({ id: i.id, healthy: i.healthy, state: i.state, device: i.device }));
    return { healthy: instances.every((i) => i.healthy), instances };
  }

  listInstances(): InstanceInfo[] {
    return this.state.instances();
  }

  getInstance(id: string): InstanceInfo | undefined {
    return this.state.instances([id])[0];
  }

  async addRegistration(req: AddRegistrationInput): Promise<InstanceInfo> {
    const limits = limitsFromWire(req.limits);
    // issue 15: a secret file the supervisor cannot read fails the enrollment now, not every 5 s in the log.
    if (req.enrollSecretPath !== undefined && this.hooks) {
      try {
        await this.hooks.checkSecretFile(req.id, req.enrollSecretPath);
      } catch (err) {
        throw new LauncherError('E_INVALID_ARGUMENT', `enroll ${req.id}: ${errorMessage(err).replace(/^registration \S+: /, '')}`, {
          cause: err,
        });
      }
    }
    const input: Parameters<Runner['add']>[0] = { id: req.id, limits, osqueryFlags: req.osqueryFlags ?? [] };
    if (req.enrollSecret !== undefined) input.enrollSecret = req.enrollSecret;
    if (req.enrollSecretPath !== undefined) input.enrollSecretPath = req.enrollSecretPath;
    if (req.isolation) input.isolation = isolationFromConfig(req.isolation);
    const known = this.runner.registrationsList().some((r) => r.id === req.id);
    const status = req.replace && known ? await this.runner.replace(input, () => this.hooks?.reset(req.id)) : await this.runner.add(input);
    return this.state.instance(status);
  }

  async removeRegistration(id: RegistrationId): Promise<void> {
    await this.runner.remove(id);
    this.hooks?.forget(id);
  }

  async restartInstance(id: RegistrationId): Promise<InstanceInfo> {
    return this.state.instance(await this.runner.restart(id));
  }

  query(id: RegistrationId, sql: string, timeoutMs: number): Promise<Array<Record<string, string>>> {
    return this.runner.query(id, sql, timeoutMs);
  }

  history(id: RegistrationId, limit: number): RunRecord[] {
    if (!this.runner.registrationsList().some((r) => r.id === id)) throw new LauncherError('E_NOT_FOUND', `registration ${id} not found`);
    return this.state.history([id], limit);
  }

  output(id: RegistrationId): OutputSource | undefined {
    return this.runner.output(id);
  }

  listQuarantine(ids: readonly string[] | undefined): QuarantineState[] {
    return this.state.quarantine(ids);
  }

  async releaseQuarantine(id: RegistrationId, query: string): Promise<QuarantineState[]> {
    if (!this.runner.registrationsList().some((r) => r.id === id)) throw new LauncherError('E_NOT_FOUND', `registration ${id} not found`);
    if (!this.hooks?.releaseQuarantine) throw new LauncherError('E_NOT_FOUND', `registration ${id} has no quarantine store`);
    return this.hooks.releaseQuarantine(id, query);
  }
}
