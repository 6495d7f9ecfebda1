/**
 * The composition root: one supervisor process built from a validated
 * config. It owns the shared pieces (SQLite store, JSON-RPC device client,
 * control API server) and the Runner, and runs them as actors of one RunGroup
 * (ADR 0001: instances own everything of their own; the app owns only what is
 * shared).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { LauncherConfig } from '../config/schema.js';
import { LauncherError, errorMessage } from '../errors.js';
import { limitsFromWire, type RegistrationId } from '../registration.js';
import { componentLogger, type Logger } from '../log/logger.js';
import type { SqliteDatabase } from '../store/database.js';
import { openWatchedDatabase, type WatchedDatabase } from '../store/watched-database.js';
import { writesOf } from '../store/write-queue.js';
import { ensurePrivateDirectory } from '../store/private-directory.js';
import { LogBuffer } from '../store/log-buffer.js';
import { BackupScheduler } from '../store/backups.js';
import { StoreIncidents } from '../store/incidents.js';
import { NodeKeyStore } from '../store/node-keys.js';
import { QuarantineStore } from '../store/quarantine.js';
import { DeviceClient } from '../device/index.js';
import { createKolideExtension, DeviceStateTracker, readEnrollSecret } from '../../extensions/kolide_grpc/index.js';
import { Runner } from '../runtime/runner.js';
import { RunGroup, type Actor } from '../rungroup/rungroup.js';
import { SignalError, signalActor } from '../rungroup/signal-actor.js';
import type { ExtensionFactory } from '../runtime/instance/extension.js';
import { stateTablePlugins } from '../state/tables.js';
import type { Scope } from '../state/table.js';
import { startControlServer, type ControlServer } from '../control/server.js';
import { buildInfo, launcherVersion } from '../version.js';
import { LiveState, toQuarantineState } from './state-source.js';
import { type EnrollHooks, RunnerControlTarget } from './control-target.js';
import { launcherOptions, type ExtensionSeams, type RunnerSeams } from './options.js';
import { checkRootDirectory, controlSettings, deviceClientOptions } from './startup-checks.js';
import { isolationFromConfig } from './isolation-config.js';
import { Checkups, type CheckupResult } from './checkups.js';
import { ignoreReloadSignals, reloadSignalsActor, ReloadCoordinator } from './reload.js';
import { toggleDebug } from '../log/logger.js';
import type { LevelWithSilent } from 'pino';
import { MetricsWiring, metricsEnabled, metricsSource } from './metrics.js';
import { instrumentPlugins } from '../metrics/instrument.js';
import type { MetricsRegistry } from '../metrics/recorder.js';
import { UpdateService } from '../update/service.js';
import { bufferUpdateEvent, runnerFleet, scopedStatus, updateRows, updateSettings } from './update-wiring.js';

export interface LauncherAppOptions {
  config: LauncherConfig;
  osquerydPath: string;
  logger: Logger;
  /** Registration that sees every tenant's state rows (the vendor). */
  vendorId?: string;
  /** Seams for tests and the demo: faster timings, fault injection. */
  runner?: RunnerSeams;
  extension?: ExtensionSeams;
  /** Handle SIGTERM/SIGINT, and SIGHUP (reload) and SIGUSR2 (debug toggle) (default true). */
  signals?: boolean;
  /** The configuration file, re-read on SIGHUP (absent: SIGHUP is logged and ignored). */
  configPath?: string;
  /** Self-checkups (issue 18): the doctor's checks, injected by `launcher run` (src/doctor sits above the app). */
  checkups?: () => Promise<CheckupResult[]>;
}

/** How often a metrics endpoint that could not listen is retried. */
const METRICS_RETRY_MS = 5_000;

export class LauncherApp {
  readonly config: LauncherConfig;
  readonly db: SqliteDatabase;
  private readonly watched: WatchedDatabase;
  private readonly backups: BackupScheduler;
  private readonly logBuffer: LogBuffer;
  /** What the integrity check at open found, as a status line for every registration's backend (issue 19); sent once. */
  private incidentNotice: string | undefined;
  readonly device: DeviceClient;
  readonly runner: Runner;
  readonly state: LiveState;
  readonly control: RunnerControlTarget;
  /** osqueryd updates (issue 17); present with or without an `update:` section (pins of installed versions hold either way). */
  readonly update: UpdateService;
  private readonly log: Logger;
  private readonly group: RunGroup;
  private controlServer: ControlServer | undefined;
  private readonly ready: Promise<void>;
  private markReady!: () => void;
  private requestStop!: (reason: string) => void;
  private readonly stopRequested = new Promise<string>((r) => (this.requestStop = r));
  /** Each registration's device standing outlives its runs (a failing enrollment stays visible across restarts). */
  private readonly deviceTrackers = new Map<string, DeviceStateTracker>();
  /** Ids the configuration file in force names (origin "config"); the rest were enrolled through the control API. */
  private readonly configIds: Set<string>;
  /** The configured log level (what SIGUSR2 returns to). */
  private configuredLevel: LevelWithSilent;
  private readonly checkups: Checkups | undefined;
  private readonly reloads: ReloadCoordinator;
  /** Metrics (issue 18), only when configured; prom-client is loaded by run(), not here. */
  private readonly metrics: MetricsWiring | undefined;

  constructor(private readonly o: LauncherAppOptions) {
    const cfg = o.config;
    this.config = cfg;
    this.log = componentLogger(o.logger, 'app');
    this.ready = new Promise((r) => (this.markReady = r));
    checkRootDirectory(cfg.root_directory);
    const previousMode = ensurePrivateDirectory(cfg.root_directory);
    if (previousMode !== undefined && previousMode !== 0o700)
      this.log.warn({ root: cfg.root_directory, mode: `0${previousMode.toString(8)}` }, 'root directory was not private; made it 0700');
    // Watched: recreated from the open connection if the file is deleted (issue 13); checkpoints off the event loop.
    // Checked at open: a corrupt file is moved aside and the newest sound backup restored (issue 19).
    const backupDir = join(cfg.root_directory, 'backups');
    this.watched = openWatchedDatabase(join(cfg.root_directory, 'launcher.sqlite'), {
      logger: componentLogger(o.logger, 'store'),
      backupDir,
    });
    this.db = this.watched.db;
    this.reportIntegrity();
    this.backups = new BackupScheduler(this.db, {
      dir: backupDir,
      intervalMs: cfg.store.backup_interval_hours * 3600 * 1000,
      keep: cfg.store.backups_kept,
      logger: componentLogger(o.logger, 'store'),
    });
    writesOf(this.db).onError = (what, err) => {
      this.log.error({ err: errorMessage(err) }, `store write given up: ${what}`);
      void this.watched.checkNow();
    };
    const metrics = metricsEnabled(cfg)
      ? new MetricsWiring(cfg.metrics, launcherVersion(), componentLogger(o.logger, 'metrics'))
      : undefined;
    this.metrics = metrics;
    this.device = new DeviceClient({
      ...deviceClientOptions(cfg, componentLogger(o.logger, 'device_client')),
      ...(metrics ? { onCallEnd: (m: string, outcome: string, s: number) => metrics.recorder.deviceCall(m, outcome, s) } : {}),
    });
    const vendorId = o.vendorId ?? cfg.registrations[0]?.id ?? 'kolide';
    this.configIds = new Set(cfg.registrations.map((r) => r.id));
    this.configuredLevel = cfg.log_level;
    const options = launcherOptions(cfg, { runner: o.runner, extension: o.extension, vendorId });
    const logBuffer = new LogBuffer(this.db, { cap: cfg.log_buffer.max_entries, maxTotalBytes: cfg.log_buffer.max_total_bytes });
    this.logBuffer = logBuffer;
    const trackers = this.deviceTrackers;
    const nodeKeys = new NodeKeyStore(this.db);
    const quarantine = new QuarantineStore(this.db);
    const trackerOf = (id: string): DeviceStateTracker => {
      let t = trackers.get(id);
      if (!t) trackers.set(id, (t = new DeviceStateTracker()));
      return t;
    };
    // kolide_launcher_info's revision and build_date: what `npm run build` recorded (blank when unknown).
    const build = buildInfo();
    const buildIdentity = {
      ...(build.commit !== 'unknown' ? { revision: build.commit } : {}),
      ...(build.build_date !== 'unknown' ? { buildDate: build.build_date } : {}),
    };
    const factory: ExtensionFactory = (ctx) => {
      const ext = createKolideExtension({
        registrationId: ctx.registrationId,
        ...(ctx.registration.enrollSecret ? { enrollSecret: ctx.registration.enrollSecret } : {}),
        ...(ctx.registration.enrollSecretPath ? { enrollSecretPath: ctx.registration.enrollSecretPath } : {}),
        client: this.device,
        db: this.db,
        logger: ctx.logger,
        ...options.extension,
        identity: {
          version: launcherVersion(),
          ...buildIdentity,
          osqueryInstanceId: () => ctx.run.instanceId(),
        },
        onDisableDevice: (id) => this.disable(id),
        getUptimeSeconds: () => ctx.run.uptimeSeconds(),
        osqueryQuery: ctx.query,
        deviceState: trackerOf(ctx.registrationId),
        endRun: (reason) => ctx.endRun(reason),
        ...(metrics
          ? { onPublish: (kind: 'result' | 'status', ok: boolean) => metrics.recorder.publish(ctx.registrationId, kind, ok) }
          : {}),
      });
      const scope: Scope = ctx.registrationId === vendorId ? { kind: 'all' } : { kind: 'tenant', registrationId: ctx.registrationId };
      const plugins = [...ext.plugins, ...stateTablePlugins(() => this.liveState(), scope)];
      return {
        name: 'kolide_grpc',
        plugins: metrics ? instrumentPlugins(plugins, ctx.registrationId, metrics.recorder) : plugins,
        start: () => ext.start(),
        stop: () => ext.stop(),
        status: () => ({ ...ext.status() }),
        runEnded: (report) => ext.runEnded(report),
      };
    };
    this.runner = new Runner({
      ...options.runner,
      osquerydPath: o.osquerydPath,
      // issue 17: each run's binary is the update service's choice for that registration (undefined: osquerydPath).
      osquerydFor: (reg) => this.update?.binaryFor(reg.id),
      extensionFactory: factory,
      db: this.db,
      logger: o.logger,
    });
    const configPins: Record<string, string> = {};
    for (const r of cfg.registrations) if (r.osqueryd_version) configPins[r.id] = r.osqueryd_version;
    const updateIds = () => this.runner.registrationsList().map((r) => r.id);
    const settings = updateSettings(cfg);
    this.update = new UpdateService({
      root: cfg.root_directory,
      db: this.db,
      ...(settings ? { settings } : {}),
      vendorId,
      configPins,
      fleet: runnerFleet(this.runner),
      logger: o.logger,
      notify: (e, severity) => bufferUpdateEvent(logBuffer, vendorId, updateIds, e, severity),
    });
    this.state = new LiveState({
      runner: this.runner,
      logBuffer,
      nodeKeys,
      configIds: this.configIds,
      checkups: () => this.checkups?.latest() ?? [],
      hostname: hostname(),
      defaultDeviceUrl: this.device.url.origin,
      deviceState: (id, enrolled, disabled) => trackers.get(id)?.snapshot(enrolled, disabled),
      quarantine,
      updates: (ids) => updateRows(this.update.status(ids)),
    });
    const enrollHooks: EnrollHooks = {
      checkSecretFile: async (id, path) => void (await readEnrollSecret(id, undefined, path)),
      forget: (id) => {
        trackers.delete(id);
        void quarantine.removeRegistration(id).catch(() => undefined);
        this.update.forget(id); // issue 17: a removed registration keeps no assignment or pin
      },
      // A released scheduled query comes back with the config of a new run (osqueryd reads the config at start).
      releaseQuarantine: async (id, query) => {
        const released = await quarantine.release(id, query);
        if (released.some((e) => e.kind === 'scheduled')) await this.runner.restart(id);
        return released.map(toQuarantineState);
      },
      reset: (id) => {
        nodeKeys.clearNodeKey(id);
        trackers.get(id)?.reset();
      },
    };
    this.control = new RunnerControlTarget(this.runner, this.state, enrollHooks);
    // From now on SIGHUP/SIGUSR2 never end the process (Node's default): before the run they are ignored, while it runs they act.
    if (o.signals !== false) ignoreReloadSignals();
    const checkupRun = o.checkups;
    this.checkups =
      checkupRun && cfg.checkups.enabled
        ? new Checkups({
            run: checkupRun,
            intervalMs: cfg.checkups.interval_seconds * 1000,
            logger: componentLogger(o.logger, 'checkups'),
            onChange: (changed) =>
              this.runner.registrationsList().some((r) => r.id === vendorId) &&
              this.sendStatusLog(
                vendorId,
                changed.some((c) => c.status === 'fail') ? 2 : changed.some((c) => c.status === 'warn') ? 1 : 0,
                `osquery-launcher self-checkup: ${changed.map((c) => `${c.name} ${c.previous_status ?? 'new'} -> ${c.status}: ${c.detail.split('\n')[0]}`).join('; ')}`,
                'checkups.ts',
              ),
          })
        : undefined;
    // Self-checkups in the metrics (issue 18): 0 pass, 1 warn, 2 fail per check; check names are the doctor's own (bounded).
    const checkups = this.checkups;
    if (metrics && checkups) {
      const level = { pass: 0, warn: 1, fail: 2 } as const;
      metrics.addGauge({
        name: 'launcher_checkup_status',
        help: 'Latest self-checkup result per check: 0 pass, 1 warn, 2 fail',
        labelNames: ['check'],
        collect: () => checkups.latest().map((c) => ({ labels: { check: c.name }, value: level[c.status] })),
      });
    }
    this.reloads = new ReloadCoordinator({
      config: cfg,
      ...(o.configPath ? { configPath: o.configPath } : {}),
      vendorId,
      runner: this.runner,
      osquerydPath: o.osquerydPath,
      logger: componentLogger(o.logger, 'reload'),
      // As `ctl remove` and `ctl enroll --replace`: a removed registration keeps nothing, a new secret a new enrollment.
      forget: (id) => enrollHooks.forget(id),
      reset: (id) => enrollHooks.reset(id),
      onApplied: (next, plan) => {
        this.configIds.clear();
        for (const r of next.registrations) this.configIds.add(r.id);
        for (const id of plan.remove) trackers.delete(id);
        if (plan.logLevelChanged) {
          this.configuredLevel = next.log_level;
          o.logger.level = next.log_level;
        }
      },
    });
    const update = this.update;
    this.control.update = {
      updateStatus: (ids) => scopedStatus(update.status(ids), ids),
      checkUpdate: () => update.check(),
      pinVersion: (id, version) => update.pin(id, version),
      unpinVersion: (id) => update.unpin(id),
    };
    this.group = new RunGroup({
      logger: componentLogger(o.logger, 'rungroup'),
      interruptTimeoutMs: 20_000,
      executeReturnTimeoutMs: 10_000,
    });
  }

  /**
   * The supervisor-wide state the state tables read. Built right after the
   * Runner (it reads the Runner); a run, and so a table query, can only begin
   * once the constructor has returned.
   */
  private liveState(): LiveState {
    if (!this.state) throw new LauncherError('E_INTERNAL', 'state tables queried before the launcher finished constructing');
    return this.state;
  }

  /** Resolves once the runner is running and the control API (if enabled) listens. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** Address clients use for the control API, once listening. */
  get controlAddress(): string | undefined {
    return this.controlServer?.address;
  }

  /** Where the metrics endpoint listens, once it does (`http://127.0.0.1:PORT/metrics` or `unix:///path`). */
  get metricsUrl(): string | undefined {
    return this.metrics?.url;
  }

  /** Where other subsystems add collect-on-scrape gauges; undefined when metrics are off. */
  get metricsRegistry(): MetricsRegistry | undefined {
    return this.metrics;
  }

  private metricsActor(): Actor | undefined {
    const metrics = this.metrics;
    if (!metrics) return undefined;
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    return {
      name: 'metrics',
      // A metrics address that cannot be bound (taken by another local process, say) must not stop the
      // supervisor: the endpoint is observability, osqueryd keeps running; it is retried every few seconds.
      execute: async () => {
        let halted = false;
        void stopped.then(() => (halted = true));
        for (let attempt = 1; !halted; attempt++) {
          try {
            await metrics.start(metricsSource(() => this.state.instances(), this.logBuffer));
            this.metricsStarted = true;
            break;
          } catch (err) {
            if (halted) break;
            if (attempt === 1 || attempt % 60 === 0)
              this.log.error(
                { err: errorMessage(err), attempt },
                'metrics endpoint unavailable; retrying every 5 s (osqueryd instances are unaffected)',
              );
            await Promise.race([stopped, new Promise((r) => setTimeout(r, METRICS_RETRY_MS).unref())]);
          }
        }
        await stopped;
      },
      interrupt: async () => {
        stop();
        await metrics.stop();
      },
    };
  }

  private metricsStarted = false;

  /** Say loudly what the integrity check at open found, and record it in the store (issue 19). */
  private reportIntegrity(): void {
    const r = this.watched.integrity;
    if (!new StoreIncidents(this.db).recordIntegrity(r)) return;
    const fields = { path: r.path, problem: r.problem, corrupt_path: r.corruptPath, backup: r.backup, bad_backups: r.badBackups };
    const message =
      r.outcome === 'restored'
        ? 'the supervisor database was corrupt: moved aside and restored from the newest sound backup (changes since that backup are lost)'
        : 'the supervisor database was corrupt and no sound backup exists: moved aside, STARTING WITH A FRESH STORE (node keys, runtime registrations and buffered logs are gone; config registrations come back)';
    this.log.error(fields, message);
    this.incidentNotice = `osquery-launcher: ${message}; problem: ${r.problem ?? 'unknown'}`;
  }

  /**
   * Tell every registration's backend what the integrity check found, as an
   * ERROR status log in osquery's own status-log shape (short keys, as the
   * extension buffers osqueryd's lines), so a fleet sees it without logging in.
   */
  private announceIncident(): void {
    const notice = this.incidentNotice;
    if (notice === undefined) return;
    this.incidentNotice = undefined;
    for (const reg of this.runner.registrationsList()) this.sendStatusLog(reg.id, 2, notice, 'launcher-app.ts');
  }

  /** Buffer one status log (osquery's shape: s 0 info, 1 warning, 2 error) for `id`'s backend. */
  private sendStatusLog(id: string, severity: 0 | 1 | 2, message: string, file: string): void {
    const now = new Date();
    const line = JSON.stringify({
      s: severity,
      f: file,
      i: 0,
      m: message,
      h: hostname(),
      c: now.toUTCString(),
      u: Math.floor(now.getTime() / 1000),
    });
    try {
      void this.logBuffer.appendQueued(id, 'status', [line]); // a lock: queued; given up after the budget: logged by the queue
    } catch (err) {
      this.log.error({ registration_id: id, err: errorMessage(err) }, `could not buffer a status log from ${file}`);
    }
  }

  /** The latest self-checkups (for a metrics gauge at merge); empty when they are off or have not run yet. */
  latestCheckups(): ReturnType<Checkups['latest']> {
    return this.checkups?.latest() ?? [];
  }

  /** Re-read the configuration file now, as SIGHUP does; resolves with what happened (never throws for a bad file). */
  reloadConfig(): ReturnType<ReloadCoordinator['request']> {
    return this.reloads.request();
  }

  /** SIGUSR2: debug logging on, or back to the configured level. */
  toggleDebugLogging(): LevelWithSilent {
    const level = toggleDebug(this.o.logger, this.configuredLevel);
    this.o.logger.warn({ log_level: level, configured_level: this.configuredLevel }, 'SIGUSR2: log level changed');
    return level;
  }

  /** Add the config file's registrations that the store does not know yet. */
  private async seedRegistrations(): Promise<void> {
    const known = new Set(this.runner.registrationsList().map((r) => r.id));
    for (const r of this.config.registrations) {
      if (known.has(r.id)) continue;
      const limits = limitsFromWire(r.limits);
      await this.runner.add({
        id: r.id,
        ...(r.enroll_secret ? { enrollSecret: r.enroll_secret } : {}),
        ...(r.enroll_secret_path ? { enrollSecretPath: r.enroll_secret_path } : {}),
        limits,
        osqueryFlags: r.osquery_flags,
        ...(r.isolation ? { isolation: isolationFromConfig(r.isolation) } : {}),
      });
    }
  }

  /** disable_device from the backend: stop that registration only; it stays, visibly disabled. */
  private disable(id: RegistrationId): void {
    void this.runner
      .disable(id, 'the device server disabled this registration (disable_device)')
      .catch((err: unknown) => this.log.error({ registration_id: id, err: errorMessage(err) }, 'stopping disabled registration failed'));
  }

  /** The update service, started once the runner supervises its registrations (a rollout in progress resumes then). */
  private updateActor(): Actor {
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    let halted = false;
    return {
      name: 'osqueryd_update',
      execute: async () => {
        while (this.runner.socketDirectory === undefined && !halted) await new Promise((r) => setTimeout(r, 50));
        if (!halted) this.update.start();
        await stopped;
      },
      interrupt: async () => {
        halted = true;
        stop();
        await this.update.stop();
      },
    };
  }

  private controlActor(): Actor | undefined {
    const c = controlSettings(this.config);
    if (!c) return undefined;
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    return {
      name: 'control_api',
      execute: async () => {
        const metrics = this.metrics;
        this.controlServer = await startControlServer({
          target: this.control,
          ...c,
          ...(metrics ? { onCallEnd: (method: string, code: string) => metrics.recorder.controlCall(method, code) } : {}),
          logger: componentLogger(this.o.logger, 'control'),
        });
        this.log.info({ address: this.controlServer.address }, 'control API listening');
        await stopped;
      },
      interrupt: async () => {
        stop();
        await this.controlServer?.close();
      },
    };
  }

  /** Run until a signal or a fatal error; every child is stopped before this resolves. */
  async run(): Promise<void> {
    await this.seedRegistrations();
    this.announceIncident();
    this.backups.start();
    this.group.add(this.runner);
    const control = this.controlActor();
    if (control) this.group.add(control);
    const metricsActor = this.metricsActor();
    if (metricsActor) this.group.add(metricsActor);
    this.group.add(this.updateActor());
    if (this.o.signals !== false) {
      this.group.add(signalActor());
      this.group.add(
        reloadSignalsActor({
          reload: () => void this.reloads.request(),
          toggleDebug: () => void this.toggleDebugLogging(),
        }),
      );
    }
    this.group.add({
      name: 'stop_request',
      execute: async () => {
        const reason = await this.stopRequested;
        this.log.info({ reason }, 'stopping');
      },
      interrupt: () => this.requestStop('group stopping'),
    });
    let stopReady!: () => void;
    const readyStopped = new Promise<void>((r) => (stopReady = r));
    this.group.add({
      name: 'readiness',
      execute: async () => {
        // Ready once the runner runs and the control API listens (if enabled).
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
          if (this.runner.socketDirectory !== undefined && (!control || this.controlServer) && (!metricsActor || this.metricsStarted))
            break;
          const outcome = await Promise.race([
            readyStopped.then(() => 'stop' as const),
            new Promise((r) => setTimeout(r, 20)).then(() => 'tick' as const),
          ]);
          if (outcome === 'stop') return;
        }
        this.markReady();
        this.checkups?.start();
        this.log.info({ version: launcherVersion(), registrations: this.runner.registrationsList().length }, 'launcher ready');
        await readyStopped;
      },
      interrupt: () => stopReady(),
    });
    try {
      await this.group.run();
    } catch (err) {
      // A signal is how a supervisor is asked to stop: a clean exit, not a failure.
      if (!(err instanceof SignalError)) throw err;
      this.log.info({ signal: err.signal }, 'stopped by signal');
    } finally {
      await this.checkups?.stop();
      await this.reloads.settle();
      this.device.close();
      await this.backups.stop();
      await this.watched.close();
    }
  }

  /** Ask the app to stop (as SIGTERM would): the stop actor returns and the group winds down. */
  stop(reason = 'stop requested'): void {
    this.requestStop(reason);
  }
}
