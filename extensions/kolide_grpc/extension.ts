/**
 * One `kolide_grpc` extension per osquery instance: config, logger and
 * distributed plugins named `kolide_grpc` plus the `kolide_launcher_info`
 * table, backed by the supervisor's shared device client and SQLite stores,
 * all keyed by this instance's registration id.
 */
import type { ConfigPlugin, DistributedPlugin, LoggerPlugin, Plugin, TablePlugin } from '../../src/osquery/plugins.js';
import { componentLogger } from '../../src/log/logger.js';
import { errorMessage } from '../../src/errors.js';
import { ConfigCache } from '../../src/store/config-cache.js';
import { LogAppendQueue } from '../../src/store/log-append-queue.js';
import { LogBuffer } from '../../src/store/log-buffer.js';
import { NodeKeyStore } from '../../src/store/node-keys.js';
import { RegistrationStore, type DeploymentUrls } from '../../src/store/registrations.js';
import { DetailsReader } from './details.js';
import { QuarantineStore } from '../../src/store/quarantine.js';
import { QueryQuarantine, type RunEnd } from './quarantine.js';
import { createConfigPlugin } from './config-plugin.js';
import type { ExtensionContext } from './context.js';
import { createDistributedPlugin } from './distributed-plugin.js';
import { Enroller } from './enroller.js';
import { createLauncherInfoTable } from './launcher-info-table.js';
import { createLoggerPlugin } from './logger-plugin.js';
import { resolveOptions, type KolideExtensionOptions } from './options.js';
import { LogPublisher } from './publisher.js';
import { Session } from './session.js';
import { ExtensionState, type KolideExtensionStatus } from './state.js';
import type { RegistrationId } from '../../src/registration.js';

export const EXTENSION_NAME = 'kolide_grpc';

export interface KolideExtension {
  readonly name: typeof EXTENSION_NAME;
  readonly registrationId: RegistrationId;
  readonly hostIdentifier: string;
  /** Register these on the instance's ExtensionServer. */
  readonly plugins: readonly Plugin[];
  readonly configPlugin: ConfigPlugin;
  readonly loggerPlugin: LoggerPlugin;
  readonly distributedPlugin: DistributedPlugin;
  readonly launcherInfoTable: TablePlugin;
  /** Background enrollment and the log publication loop. Idempotent. */
  start(): void;
  /** Stop loops and abort in-flight calls; buffered logs stay for the next run. Idempotent. */
  stop(): Promise<void>;
  status(): KolideExtensionStatus;
  /** Enroll now unless a node key is stored; resolves to the node key. */
  enroll(): Promise<string>;
  /** Run one publication tick now (tests, shutdown tooling). */
  publishNow(): Promise<void>;
  /** The run is over (osqueryd gone): record the quarantine suspects; a note for the run history. */
  runEnded(end: RunEnd): Promise<string | undefined>;
}

export function createKolideExtension(options: KolideExtensionOptions): KolideExtension {
  const opts = resolveOptions(options);
  const reg = opts.registrationId;
  const log = componentLogger(opts.logger, 'kolide_grpc', { registration_id: reg });
  const state = new ExtensionState();
  const nodeKeys = new NodeKeyStore(opts.db);
  const configCache = new ConfigCache(opts.db);
  const buffer = new LogBuffer(opts.db, { cap: opts.bufferCap, maxTotalBytes: opts.bufferMaxTotalBytes });
  const appender = new LogAppendQueue(buffer);
  const registrations = new RegistrationStore(opts.db);
  let deployment: DeploymentUrls = registrations.get(reg)?.deployment ?? {};
  let publisher: LogPublisher | undefined;
  const quarantine = new QueryQuarantine({
    registrationId: reg,
    store: new QuarantineStore(opts.db),
    settings: opts.quarantine,
    buffer,
    log,
    endRun: (reason) => {
      if (opts.endRun) opts.endRun(reason);
      else log.error({ err: reason.message }, 'a distributed query is past its deadline but this extension cannot end its run');
    },
  });

  const ctx: ExtensionContext = {
    opts,
    state,
    nodeKeys,
    configCache,
    buffer,
    log,
    hostIdentifier: nodeKeys.hostIdentifier(reg),
    details: new DetailsReader(opts.osqueryQuery, opts.detailsTimings, log, state.abort.signal),
    quarantine,
    deviceUrl: () => deployment.deviceUrl,
    moveTo(urls: DeploymentUrls): void {
      const next: DeploymentUrls = { ...deployment };
      if (urls.deviceUrl) next.deviceUrl = opts.client.checkServerUrl(urls.deviceUrl);
      if (urls.controlServerUrl) next.controlServerUrl = urls.controlServerUrl;
      if (urls.publisherUrl) next.publisherUrl = urls.publisherUrl;
      if (
        next.deviceUrl === deployment.deviceUrl &&
        next.controlServerUrl === deployment.controlServerUrl &&
        next.publisherUrl === deployment.publisherUrl
      )
        return;
      deployment = next;
      registrations.setDeployment(reg, next);
      log.warn({ device_url: next.deviceUrl }, 'device server moved this registration (deployment_urls)');
    },
    disable(operation: string): void {
      if (state.disabled) return;
      state.disabled = true;
      state.abort.abort();
      log.warn({ operation }, 'device server answered disable_device; registration disabled');
      void publisher?.stop();
      try {
        opts.onDisableDevice(reg);
      } catch (err) {
        log.error({ err: errorMessage(err) }, 'onDisableDevice callback threw');
      }
    },
  };

  const enroller = new Enroller(ctx);
  const session = new Session(ctx, enroller);
  publisher = new LogPublisher(ctx, session);
  const configPlugin = createConfigPlugin(ctx, session);
  const loggerPlugin = createLoggerPlugin(ctx, appender);
  const distributedPlugin = createDistributedPlugin(ctx, session);
  const launcherInfoTable = createLauncherInfoTable(ctx);
  let backgroundEnroll: Promise<unknown> | undefined;
  let stopping: Promise<void> | undefined;

  const enroll = async (): Promise<string> => {
    session.checkActive('enroll');
    try {
      return await enroller.ensureNodeKey();
    } catch (err) {
      state.recordError('enroll', err);
      throw err;
    }
  };

  return {
    name: EXTENSION_NAME,
    registrationId: reg,
    hostIdentifier: ctx.hostIdentifier,
    plugins: [configPlugin, loggerPlugin, distributedPlugin, launcherInfoTable],
    configPlugin,
    loggerPlugin,
    distributedPlugin,
    launcherInfoTable,
    start(): void {
      if (state.started || state.stopped) return;
      state.started = true;
      log.info({ host_identifier: ctx.hostIdentifier }, 'kolide_grpc extension starting');
      ctx.details.start();
      backgroundEnroll = enroll().catch((err: unknown) =>
        log.warn({ err: errorMessage(err) }, 'background enrollment failed; will retry on the next call'),
      );
      publisher!.start();
    },
    stop(): Promise<void> {
      stopping ??= (async () => {
        state.stopped = true;
        state.abort.abort();
        quarantine.stop();
        appender.flush();
        await publisher!.stop();
        await backgroundEnroll;
        log.info('kolide_grpc extension stopped');
      })();
      return stopping;
    },
    status(): KolideExtensionStatus {
      const nodeKeyPresent = nodeKeys.getNodeKey(reg) !== undefined;
      return {
        registrationId: reg,
        hostIdentifier: ctx.hostIdentifier,
        started: state.started,
        stopped: state.stopped,
        enrolled: nodeKeyPresent && !state.disabled,
        device: opts.deviceState.snapshot(nodeKeyPresent, state.disabled),
        deviceUrl: deployment.deviceUrl ?? opts.client.url.origin,
        nodeKeyPresent,
        disabled: state.disabled,
        enrollments: state.enrollments,
        reenrollments: state.reenrollments,
        lastError: state.lastError ? { ...state.lastError } : undefined,
        lastPublishAt: state.lastPublishAt,
        lastConfigSource: state.lastConfigSource,
        publishedLogs: { ...state.publishedLogs },
        batchLimitBytes: publisher!.limit.current,
        publish: {
          attempts: publisher!.attempts,
          failures: publisher!.backoff.failures,
          backoffMs: publisher!.backoff.ceilingMs,
          limitLowered: publisher!.limit.changes.lowered,
          limitRaised: publisher!.limit.changes.raised,
        },
        buffers: buffer.statsFor(reg),
        quarantine: { enabled: quarantine.enabled, inFlight: quarantine.inFlightIds().length },
      };
    },
    enroll,
    publishNow(): Promise<void> {
      return publisher!.publishNow();
    },
    runEnded(end: RunEnd): Promise<string | undefined> {
      return quarantine.runEnded(end);
    },
  };
}
