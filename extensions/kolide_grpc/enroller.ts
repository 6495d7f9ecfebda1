/**
 * Enrollment of one registration (docs/protocol/device.md#enrollment, docs/protocol/device.md#re-enroll): one enrollment at a
 * time, node key saved per registration, and re-enrollment after
 * node_invalid that happens once however many callers saw the stale key.
 * Details wait (bounded) for osqueryd's answer; a wrong_region answer moves
 * the registration to the URL the backend names and enrolls there (at most
 * MAX_REGION_HOPS moves; ADR 0013). Each outcome goes to the device state.
 */
import type { DeploymentUrls } from '../../src/device/index.js';
import { LauncherError, errorMessage } from '../../src/errors.js';
import { callOptions, type ExtensionContext } from './context.js';
import { enrollmentDetails } from './details.js';
import { munemoOf, readEnrollSecret } from './secret.js';

/** wrong_region answers followed within one enrollment before giving up. */
const MAX_REGION_HOPS = 3;

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
    const device = this.ctx.opts.deviceState;
    this.inFlight ??= this.requestEnrollment()
      .then(
        (key) => {
          device.succeeded('enroll');
          return key;
        },
        (err: unknown) => {
          device.failed('enroll', err);
          throw err;
        },
      )
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }

  private async requestEnrollment(): Promise<string> {
    const { opts, state, nodeKeys, log } = this.ctx;
    const reg = opts.registrationId;
    if (!state.active)
      throw new LauncherError(
        state.disabled ? 'E_DEVICE_DISABLED' : 'E_SHUTDOWN',
        `registration ${reg}: extension is ${state.disabled ? 'disabled' : 'stopped'}`,
      );
    const secret = await readEnrollSecret(reg, opts.enrollSecret, opts.enrollSecretPath);
    // Launcher waits (bounded) for os_version and hostname from osqueryd, then enrolls with what it has.
    const fromOsquery = await this.ctx.details.wait();
    const params = {
      enrollSecret: secret,
      hostIdentifier: this.ctx.hostIdentifier,
      details: enrollmentDetails(opts.enrollmentDetails, opts.identity.version, fromOsquery),
    };
    for (let hop = 0; ; hop++) {
      const where = this.ctx.deviceUrl() ?? opts.client.url.origin;
      const res = await opts.client.requestEnrollment(params, callOptions(this.ctx));
      if (res.disableDevice) {
        this.ctx.disable('enroll');
        throw new LauncherError('E_DEVICE_DISABLED', `registration ${reg}: device server answered disable_device to RequestEnrollment`);
      }
      // Launcher applies non-empty, changed deployment URLs whether or not wrong_region is set.
      const moved = this.applyDeploymentUrls(res.deploymentUrls, where);
      if (res.wrongRegion) {
        if (!moved)
          throw new LauncherError('E_DEVICE_REJECTED', `registration ${reg}: ${where} answered wrong_region without a new enrollment_url`);
        if (hop + 1 >= MAX_REGION_HOPS)
          throw new LauncherError(
            'E_DEVICE_REJECTED',
            `registration ${reg}: still wrong_region after ${MAX_REGION_HOPS} moves (last ${where})`,
          );
        log.warn({ from: where, to: this.ctx.deviceUrl() }, 'enrollment answered wrong_region; retrying at the new device server');
        continue;
      }
      if (res.nodeInvalid) {
        const code = res.errorCode ? ` (error_code ${JSON.stringify(res.errorCode)})` : '';
        throw new LauncherError(
          'E_NODE_INVALID',
          `registration ${reg}: ${where} rejected the enrollment (node_invalid)${code}; check the enroll secret`,
        );
      }
      if (res.nodeKey === '') throw new LauncherError('E_DEVICE_RESPONSE', `registration ${reg}: enrollment returned an empty node_key`);
      if (state.disabled) throw new LauncherError('E_DEVICE_DISABLED', `registration ${reg}: disabled during enrollment`);
      nodeKeys.setNodeKey(reg, res.nodeKey, munemoOf(secret));
      state.enrollments++;
      log.info({ host_identifier: this.ctx.hostIdentifier, device_url: where }, 'enrolled');
      return res.nodeKey;
    }
  }

  /** Keep new deployment URLs; true when the device URL changed. A URL we would not use is an error, not stored. */
  private applyDeploymentUrls(urls: DeploymentUrls | undefined, current: string): boolean {
    if (!urls || (!urls.enrollmentUrl && !urls.controlServerUrl && !urls.osqueryPublisherUrl)) return false;
    const reg = this.ctx.opts.registrationId;
    try {
      this.ctx.moveTo({ deviceUrl: urls.enrollmentUrl, controlServerUrl: urls.controlServerUrl, publisherUrl: urls.osqueryPublisherUrl });
    } catch (err) {
      throw new LauncherError(
        'E_DEVICE_RESPONSE',
        `registration ${reg}: ${current} handed out an unusable enrollment_url: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    return (this.ctx.deviceUrl() ?? this.ctx.opts.client.url.origin) !== current;
  }
}
