/**
 * Enrollment of one registration (reference §2.5/2.6): one enrollment at a
 * time, node key saved per registration, and re-enrollment after
 * node_invalid that happens once however many callers saw the stale key.
 */
import { LauncherError } from '../../src/errors.js';
import type { ExtensionContext } from './context.js';
import { enrollmentDetails } from './details.js';
import { munemoOf, readEnrollSecret } from './secret.js';

export class Enroller {
  private readonly ctx: ExtensionContext;
  private inFlight: Promise<string> | undefined;

  constructor(ctx: ExtensionContext) {
    this.ctx = ctx;
  }

  currentKey(): string | undefined {
    return this.ctx.nodeKeys.getNodeKey(this.ctx.opts.registrationId);
  }

  /** The stored node key, or a new one from RequestEnrollment. */
  async ensureNodeKey(): Promise<string> {
    return this.currentKey() ?? this.enroll();
  }

  /**
   * Replace `staleKey` after the server called it invalid. When another
   * caller already replaced it (or is doing so), that result is shared.
   */
  async reenroll(staleKey: string): Promise<string> {
    if (this.inFlight) return this.inFlight;
    const current = this.currentKey();
    if (current !== undefined && current !== staleKey) return current;
    const { registrationId, enrollSecret, enrollSecretPath } = this.ctx.opts;
    if (enrollSecret === undefined && enrollSecretPath === undefined) {
      throw new LauncherError('E_NODE_INVALID', `registration ${registrationId}: node key rejected and no enroll secret to re-enroll with`);
    }
    this.ctx.nodeKeys.clearNodeKey(registrationId);
    this.ctx.state.reenrollments++;
    this.ctx.log.warn('node key rejected (node_invalid); re-enrolling');
    return this.enroll();
  }

  private enroll(): Promise<string> {
    this.inFlight ??= this.requestEnrollment().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async requestEnrollment(): Promise<string> {
    const { opts, state, nodeKeys, log } = this.ctx;
    const reg = opts.registrationId;
    if (!state.active) throw new LauncherError(state.disabled ? 'E_DEVICE_DISABLED' : 'E_SHUTDOWN', `registration ${reg}: extension is ${state.disabled ? 'disabled' : 'stopped'}`);
    const secret = await readEnrollSecret(reg, opts.enrollSecret, opts.enrollSecretPath);
    const res = await opts.client.requestEnrollment(
      {
        enrollSecret: secret,
        hostIdentifier: this.ctx.hostIdentifier,
        details: enrollmentDetails(opts.enrollmentDetails, opts.identity.version),
      },
      { signal: state.abort.signal },
    );
    if (res.disableDevice) {
      this.ctx.disable('enroll');
      throw new LauncherError('E_DEVICE_DISABLED', `registration ${reg}: device server answered disable_device to RequestEnrollment`);
    }
    if (res.nodeInvalid) throw new LauncherError('E_NODE_INVALID', `registration ${reg}: enrollment rejected (node_invalid); check the enroll secret`);
    if (res.wrongRegion) {
      throw new LauncherError(
        'E_DEVICE_REJECTED',
        `registration ${reg}: enrollment answered wrong_region (deployment URLs: ${JSON.stringify(res.deploymentUrls ?? null)})`,
      );
    }
    if (res.nodeKey === '') throw new LauncherError('E_DEVICE_RESPONSE', `registration ${reg}: enrollment returned an empty node_key`);
    if (state.disabled) throw new LauncherError('E_DEVICE_DISABLED', `registration ${reg}: disabled during enrollment`);
    nodeKeys.setNodeKey(reg, res.nodeKey, munemoOf(secret));
    state.enrollments++;
    log.info({ host_identifier: this.ctx.hostIdentifier }, 'enrolled');
    return res.nodeKey;
  }
}
