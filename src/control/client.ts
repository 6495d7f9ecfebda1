/**
 * Typed client of the control API (used by `launcher ctl` and tests).
 * Failures are `ControlCallError`s whose `failure` says what went wrong
 * (permission-denied, not-found, unavailable, tls, unsupported, ...).
 *
 *   const client = new ControlClient({ target: 'unix:///run/launcher/control.sock', ca, cert, key });
 *   const { features } = await client.version();
 *   for (const i of await client.listInstances()) console.log(i.id, i.state);
 *   client.close();
 */
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { AddRegistrationResponse__Output } from './gen/launcher/v1/AddRegistrationResponse.js';
import type { GetHistoryResponse__Output } from './gen/launcher/v1/GetHistoryResponse.js';
import type { GetInstanceResponse__Output } from './gen/launcher/v1/GetInstanceResponse.js';
import type { GetVersionResponse__Output } from './gen/launcher/v1/GetVersionResponse.js';
import type { HealthResponse__Output } from './gen/launcher/v1/HealthResponse.js';
import type { ListInstancesResponse__Output } from './gen/launcher/v1/ListInstancesResponse.js';
import type { QueryResponse__Output } from './gen/launcher/v1/QueryResponse.js';
import type { RemoveRegistrationResponse__Output } from './gen/launcher/v1/RemoveRegistrationResponse.js';
import type { UpdateStatusResponse__Output } from './gen/launcher/v1/UpdateStatusResponse.js';
import { fromUpdateStatusMessage } from './update-mapping.js';
import type { UpdateStatusInfo } from './target.js';
import type { RestartInstanceResponse__Output } from './gen/launcher/v1/RestartInstanceResponse.js';
import type { LauncherClient } from './gen/launcher/v1/Launcher.js';
import {
  fromHealthMessage,
  fromInstanceMessage,
  fromOutputLineMessage,
  fromRowMessages,
  fromRunMessage,
  fromVersionMessage,
  toAddRegistrationMessage,
  type OutputLineView,
  type ServerVersionView,
} from './mapping.js';
import { launcherApi } from './proto.js';
import { ControlCallError, TRANSPORT_HINT, fromServiceError, tlsFailure } from './call-error.js';
import type { AddRegistrationInput, HealthInfo, InstanceInfo, QuarantineState, RunRecord } from './target.js';
import type { ListQuarantineResponse__Output } from './gen/launcher/v1/ListQuarantineResponse.js';
import type { ReleaseQuarantineResponse__Output } from './gen/launcher/v1/ReleaseQuarantineResponse.js';
import { fromQuarantineMessage } from './quarantine-mapping.js';
import { clientCredentials, type TlsMaterial } from './tls.js';
import { probeTls } from './tls-probe.js';

export interface ControlClientOptions extends TlsMaterial {
  /** `unix:///path` or `host:port`. */
  target: string;
  /** Name to verify the server certificate against (default: the target's host; `localhost` for unix: and IP targets). */
  serverName?: string;
  /** Deadline of ordinary calls (default 10 s). */
  callTimeoutMs?: number;
}

export interface StreamOutputOptions {
  /** Start at the beginning of the current run instead of with new lines. */
  fromBeginning?: boolean;
  /** Keep waiting for new lines until the run ends (default true). */
  follow?: boolean;
  signal?: AbortSignal;
}

const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Extra time on top of a query's own timeout before the client gives up. */
const QUERY_DEADLINE_MARGIN_MS = 5_000;
/**
 * Longest call deadline sent. grpc-js servers read the grpc-timeout header into an int32 and
 * arm a timer with it: past 2^31-1 ms (~24.8 days, after the header's rounding) the timer fires
 * at once and every call fails "Deadline exceeded" before it is handled.
 */
const MAX_DEADLINE_MS = 24 * 24 * 3600 * 1000;

function defaultServerName(target: string): string | undefined {
  if (target.startsWith('unix:')) return undefined; // grpc-js uses "localhost"
  const host = target
    .replace(/^dns:(\/\/[^/]*\/)?/, '')
    .replace(/:\d+$/, '')
    .replace(/^\[|\]$/g, '');
  // Avoid SNI with an IP address (not allowed by RFC 6066, and Node warns): verify as "localhost".
  return isIP(host) ? 'localhost' : undefined;
}

export class ControlClient {
  readonly target: string;
  private readonly stub: LauncherClient;
  private readonly timeoutMs: number;
  private readonly material: TlsMaterial;
  private readonly serverName: string;
  private versionInfo: Promise<ServerVersionView> | undefined;

  constructor(options: ControlClientOptions) {
    this.target = options.target;
    this.timeoutMs = options.callTimeoutMs ?? 10_000;
    const serverName = options.serverName ?? defaultServerName(options.target);
    this.material = { ca: options.ca, cert: options.cert, key: options.key };
    this.serverName = serverName ?? 'localhost';
    const channelOptions: grpc.ChannelOptions = { 'grpc.max_receive_message_length': MAX_RESPONSE_BYTES };
    if (serverName) channelOptions['grpc.ssl_target_name_override'] = serverName;
    const { Client } = launcherApi();
    this.stub = new Client(options.target, clientCredentials(options), channelOptions);
  }

  private call<Res>(
    method: string,
    invoke: (options: grpc.CallOptions, callback: grpc.requestCallback<Res>) => void,
    timeoutMs = this.timeoutMs,
  ): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      invoke({ deadline: Date.now() + Math.min(timeoutMs, MAX_DEADLINE_MS) }, (err, res) => {
        if (err) this.explain(err, method).then(reject, reject);
        else resolve(res as Res);
      });
    });
  }

  /** A ControlCallError for a failed call; bare connection failures are probed for a TLS reason. */
  private async explain(err: unknown, method: string): Promise<ControlCallError> {
    const mapped = fromServiceError(err, this.target, method);
    // Only a connection that failed for no stated reason is worth a TLS probe.
    if (mapped.failure !== 'unavailable' || !TRANSPORT_HINT.test(mapped.message) || /ENOENT|ECONNREFUSED|EACCES/.test(mapped.message)) {
      return mapped;
    }
    const probe = await probeTls(this.target, this.material, this.serverName);
    if (!probe.ok && probe.tls) return tlsFailure(this.target, probe.reason, { grpcStatus: mapped.grpcStatus, cause: err });
    return mapped;
  }

  /** Server version, API version and features (fetched once per client). */
  version(): Promise<ServerVersionView> {
    this.versionInfo ??= this.call<GetVersionResponse__Output>('GetVersion', (o, cb) => this.stub.GetVersion({}, o, cb)).then(
      fromVersionMessage,
    );
    this.versionInfo.catch(() => {
      this.versionInfo = undefined; // retry on the next call
    });
    return this.versionInfo;
  }

  async supports(feature: string): Promise<boolean> {
    return (await this.version()).features.includes(feature);
  }

  /** Throws ControlCallError('unsupported') naming `what` when the server lacks `feature`. */
  async requireFeature(feature: string, what: string): Promise<void> {
    const v = await this.version();
    if (!v.features.includes(feature)) {
      throw new ControlCallError(
        'unsupported',
        `server does not support ${what} (the launcher at ${this.target}, version ${v.serverVersion}, lacks feature "${feature}")`,
      );
    }
  }

  async health(): Promise<HealthInfo> {
    return fromHealthMessage(await this.call<HealthResponse__Output>('Health', (o, cb) => this.stub.Health({}, o, cb)));
  }

  async listInstances(): Promise<InstanceInfo[]> {
    const res = await this.call<ListInstancesResponse__Output>('ListInstances', (o, cb) => this.stub.ListInstances({}, o, cb));
    return res.instances.map(fromInstanceMessage);
  }

  async getInstance(id: string): Promise<InstanceInfo> {
    const res = await this.call<GetInstanceResponse__Output>('GetInstance', (o, cb) => this.stub.GetInstance({ id }, o, cb));
    if (!res.instance) throw new ControlCallError('internal', `GetInstance ${id}: the server returned no instance`);
    return fromInstanceMessage(res.instance);
  }

  async addRegistration(input: AddRegistrationInput): Promise<InstanceInfo> {
    const res = await this.call<AddRegistrationResponse__Output>(
      'AddRegistration',
      (o, cb) => this.stub.AddRegistration(toAddRegistrationMessage(input), o, cb),
      60_000,
    );
    if (!res.instance) throw new ControlCallError('internal', `AddRegistration ${input.id}: the server returned no instance`);
    return fromInstanceMessage(res.instance);
  }

  async removeRegistration(id: string): Promise<void> {
    await this.call<RemoveRegistrationResponse__Output>(
      'RemoveRegistration',
      (o, cb) => this.stub.RemoveRegistration({ id }, o, cb),
      60_000,
    );
  }

  async restartInstance(id: string): Promise<InstanceInfo> {
    const res = await this.call<RestartInstanceResponse__Output>(
      'RestartInstance',
      (o, cb) => this.stub.RestartInstance({ id }, o, cb),
      60_000,
    );
    if (!res.instance) throw new ControlCallError('internal', `RestartInstance ${id}: the server returned no instance`);
    return fromInstanceMessage(res.instance);
  }

  /** `timeoutMs` 0: the server's default. */
  async query(id: string, sql: string, timeoutMs = 0): Promise<Array<Record<string, string>>> {
    const deadline = (timeoutMs || 30_000) + QUERY_DEADLINE_MARGIN_MS;
    const res = await this.call<QueryResponse__Output>(
      'Query',
      (o, cb) => this.stub.Query({ registration_id: id, sql, timeout_ms: timeoutMs }, o, cb),
      deadline,
    );
    return fromRowMessages(res.rows);
  }

  /** `limit` 0: the server's default. */
  async history(id: string, limit = 0): Promise<RunRecord[]> {
    const res = await this.call<GetHistoryResponse__Output>('GetHistory', (o, cb) =>
      this.stub.GetHistory({ registration_id: id, limit }, o, cb),
    );
    return res.runs.map(fromRunMessage);
  }

  /** Quarantined queries of one registration, or (no id) of every registration the caller may see. */
  async listQuarantine(id = ''): Promise<QuarantineState[]> {
    const res = await this.call<ListQuarantineResponse__Output>('ListQuarantine', (o, cb) =>
      this.stub.ListQuarantine({ registration_id: id }, o, cb),
    );
    return res.queries.map(fromQuarantineMessage);
  }

  /** Release a quarantined query: a scheduled query's name, a SQL hash (prefix of >= 8 hex digits) or the SQL. */
  async releaseQuarantine(id: string, query: string): Promise<QuarantineState[]> {
    const res = await this.call<ReleaseQuarantineResponse__Output>(
      'ReleaseQuarantine',
      (o, cb) => this.stub.ReleaseQuarantine({ registration_id: id, query }, o, cb),
      60_000,
    );
    return res.released.map(fromQuarantineMessage);
  }

  /**
   * Lines of the registration's current run. Ends when the run ends (follow)
   * or once caught up (no follow); abort `signal` to stop early.
   */
  async *streamOutput(id: string, options: StreamOutputOptions = {}): AsyncGenerator<OutputLineView> {
    const follow = options.follow ?? true;
    const call = this.stub.StreamOutput({ registration_id: id, from_beginning: options.fromBeginning ?? false, follow });
    const onAbort = (): void => call.cancel();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const msg of call) yield fromOutputLineMessage(msg);
    } catch (err) {
      if (options.signal?.aborted && (err as Partial<grpc.ServiceError>).code === grpc.status.CANCELLED) return;
      throw await this.explain(err, 'StreamOutput');
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      call.cancel();
    }
  }

  close(): void {
    this.stub.close();
  }

  // issue 17: osqueryd updates (feature "osqueryd-update").

  /** The host's update status; `id`: only that registration. */
  async updateStatus(id = ''): Promise<UpdateStatusInfo> {
    await this.requireFeature('osqueryd-update', 'osqueryd updates');
    const res = await this.call<UpdateStatusResponse__Output>('GetUpdateStatus', (o, cb) =>
      this.stub.GetUpdateStatus({ registration_id: id }, o, cb),
    );
    return fromUpdateStatusMessage(res);
  }

  /** Check the update repository now (admin). */
  async checkUpdate(): Promise<UpdateStatusInfo> {
    await this.requireFeature('osqueryd-update', 'osqueryd updates');
    const res = await this.call<UpdateStatusResponse__Output>('CheckUpdate', (o, cb) => this.stub.CheckUpdate({}, o, cb), 15 * 60_000);
    return fromUpdateStatusMessage(res);
  }

  /** Pin `id` to `version` (empty: what it runs now); admin. */
  async pinVersion(id: string, version = ''): Promise<UpdateStatusInfo> {
    await this.requireFeature('osqueryd-update', 'osqueryd updates');
    const res = await this.call<UpdateStatusResponse__Output>(
      'PinVersion',
      (o, cb) => this.stub.PinVersion({ registration_id: id, version }, o, cb),
      60_000,
    );
    return fromUpdateStatusMessage(res);
  }

  async unpinVersion(id: string): Promise<UpdateStatusInfo> {
    await this.requireFeature('osqueryd-update', 'osqueryd updates');
    const res = await this.call<UpdateStatusResponse__Output>('UnpinVersion', (o, cb) =>
      this.stub.UnpinVersion({ registration_id: id }, o, cb),
    );
    return fromUpdateStatusMessage(res);
  }
}
