/**
 * Every node-key call of an extension (config, logs, queries, results) goes
 * through `withNodeKey` (docs/protocol/device.md#errors, docs/protocol/device.md#re-enroll): enroll lazily, call, on
 * disable_device disable this registration, on node_invalid re-enroll once
 * and retry once; a second node_invalid gives up.
 */
import { LauncherError } from '../../src/errors.js';
import type { CallOptions, DeviceFlags } from '../../src/device/index.js';
import { callOptions, type ExtensionContext } from './context.js';
import type { Enroller } from './enroller.js';

/** `call` carries the abort signal and this registration's server URL: pass it to the client as is. */
export type NodeKeyCall<T> = (nodeKey: string, call: CallOptions) => Promise<T>;

export class Session {
  private readonly ctx: ExtensionContext;
  readonly enroller: Enroller;

  constructor(ctx: ExtensionContext, enroller: Enroller) {
    this.ctx = ctx;
    this.enroller = enroller;
  }

  checkActive(operation: string): void {
    const { state, opts } = this.ctx;
    if (state.disabled)
      throw new LauncherError(
        'E_DEVICE_DISABLED',
        `registration ${opts.registrationId}: ${operation} refused, device disabled by the server`,
      );
    if (state.stopped)
      throw new LauncherError('E_SHUTDOWN', `registration ${opts.registrationId}: ${operation} refused, extension stopped`);
  }

  /** Enrollment failures are reported by the enroller; the call's own outcome goes to the device state here. */
  async withNodeKey<T extends DeviceFlags>(operation: string, call: NodeKeyCall<T>): Promise<T> {
    this.checkActive(operation);
    const first = await this.enroller.ensureNodeKey();
    const device = this.ctx.opts.deviceState;
    try {
      const res = this.check(operation, await call(first, callOptions(this.ctx)));
      if (!res.nodeInvalid) {
        device.succeeded(operation);
        return res;
      }
    } catch (err) {
      device.failed(operation, err);
      throw err;
    }
    const fresh = await this.enroller.reenroll(first);
    try {
      const retried = this.check(operation, await call(fresh, callOptions(this.ctx)));
      if (retried.nodeInvalid) {
        throw new LauncherError(
          'E_NODE_INVALID',
          `registration ${this.ctx.opts.registrationId}: ${operation} rejected (node_invalid) after re-enrolling`,
        );
      }
      device.succeeded(operation);
      return retried;
    } catch (err) {
      device.failed(operation, err);
      throw err;
    }
  }

  private check<T extends DeviceFlags>(operation: string, res: T): T {
    if (res.disableDevice) {
      this.ctx.disable(operation);
      throw new LauncherError(
        'E_DEVICE_DISABLED',
        `registration ${this.ctx.opts.registrationId}: device server answered disable_device to ${operation}`,
      );
    }
    return res;
  }
}
