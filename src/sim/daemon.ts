/**
 * The stand-in daemon: osqueryd's worker start-up order (docs/protocol/osquery-extensions.md#start-up-order) and
 * its shutdown. Start-up: pidfile, database, extension manager socket and
 * watcher, --extensions_require, config plugin (exit 78 when missing),
 * genConfig, logger plugins (78), distributed plugin (78), then the
 * scheduler, the distributed loop, config refresh and the memory watchdog.
 *
 * Shutdown (SIGTERM/SIGINT → 0, fatal start-up errors → 78, watchdog → 1):
 * stop every loop, relay the last status lines, call shutdown() on every
 * registered extension, close the socket and remove it and every
 * `<socket>.*` file, remove the pidfile. A second signal, or
 * --alarm_timeout seconds, ends the process at once.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExtensionManagerProcessor } from '../osquery/protocol.js';
import { ThriftServer } from '../osquery/server.js';
import { extensionSocketPath } from '../osquery/socket-path.js';
import { errorMessage } from '../errors.js';
import { ConfigManager } from './config.js';
import { filesystemConfigPlugin } from './config-filesystem.js';
import { coreTablePlugin, sqlPlugin, tlsPlugin } from './core-plugins.js';
import { Decorations } from './decorators.js';
import { DistributedRunner } from './distributed.js';
import { callExtension, extensionHealthy } from './extension-call.js';
import { extensionTable } from './extension-table.js';
import { FaultController, type Faults } from './faults.js';
import type { FlagValues } from './flags.js';
import { glog } from './glog.js';
import { hostIdentifier, readProductUuid, type HostIds } from './host.js';
import { LoggerRouter } from './logger.js';
import { filesystemLoggerPlugin, stdoutLoggerPlugin } from './logger-filesystem.js';
import { managerHandler } from './manager.js';
import { acquirePidfile, PidfileError, releasePidfile } from './pidfile.js';
import { QueryLog } from './query-log.js';
import { Registry } from './registry.js';
import { requiredNames, waitForRequired } from './require.js';
import { Scheduler } from './schedule.js';
import { coreTables } from './sql/core-tables.js';
import { fileTables } from './sql/file-tables.js';
import { SqlEngine } from './sql/engine.js';
import { SimStore } from './store.js';
import { OSQUERY_VERSION } from './version.js';
import { ExtensionWatcher, shutdownExtensions } from './watcher.js';
import { MemoryWatchdog } from './watchdog.js';

/** osqueryd's EXIT_CATASTROPHIC: a required plugin is missing. */
export const EXIT_CATASTROPHIC = 78;
const EXTENSION_SHUTDOWN_TIMEOUT_MS = 1_000;

/** Delete `<socket>` and every `<socket>.*` file, as osqueryd does before binding and at exit. */
export function removeSocketFiles(socket: string): void {
  rmSync(socket, { force: true });
  const prefix = `${basename(socket)}.`;
  let names: string[] = [];
  try {
    names = readdirSync(dirname(socket));
  } catch {
    return;
  }
  for (const name of names) if (name.startsWith(prefix)) rmSync(join(dirname(socket), name), { force: true });
}

export class Daemon {
  private readonly flags: FlagValues;
  private readonly faults: FaultController;
  private readonly socket: string;
  private readonly startTime = Math.floor(Date.now() / 1000);
  private readonly registry: Registry;
  private readonly engine: SqlEngine;
  private readonly logger: LoggerRouter;
  private readonly config: ConfigManager;
  private readonly watchdog: MemoryWatchdog;
  private store: SimStore | undefined;
  private ids: HostIds = { uuid: '', instanceId: '' };
  private server: ThriftServer | undefined;
  private watcher: ExtensionWatcher | undefined;
  private scheduler: Scheduler | undefined;
  private distributed: DistributedRunner | undefined;
  private pidfileHeld = false;
  private stopping: Promise<never> | undefined;
  private exitCode = 0;

  constructor(flags: FlagValues, faults: Faults) {
    this.flags = flags;
    this.faults = new FaultController(faults);
    this.socket = flags.get('extensions_socket');
    const hostId = () => hostIdentifier(flags, this.ids);
    this.engine = new SqlEngine({
      queryLog: new QueryLog(flags.get('database_path')),
      faults: this.faults,
      nullvalue: () => flags.get('nullvalue'),
      defaultIndex: () => flags.bool('extensions_default_index'),
    });
    this.registry = new Registry(
      {
        tableAdded: (uuid, name, routes) => this.attachTable(uuid, name, routes),
        tableRemoved: (name) => this.engine.removeTable(name),
      },
      (uuid, registry, item, request) =>
        callExtension(extensionSocketPath(this.socket, uuid), registry, item, request, flags.num('thrift_timeout') * 1000),
    );
    this.logger = new LoggerRouter(this.registry, flags, hostId, this.faults);
    this.config = new ConfigManager(this.registry, flags, this.engine, this.faults, hostId);
    this.watchdog = new MemoryWatchdog(flags, (message) => {
      glog.warning('watcher.cpp', 325, message);
      void this.shutdown(1);
    });
  }

  async run(): Promise<void> {
    const { flags } = this;
    glog.verbose = flags.bool('verbose');
    glog.toStderr = flags.bool('logger_stderr');
    glog.minStderr = flags.num('logger_min_stderr');
    this.logger.capture();
    this.installSignals();

    if (!flags.bool('ephemeral')) {
      try {
        await acquirePidfile(flags.get('pidfile'), flags.bool('force'));
        this.pidfileHeld = true;
      } catch (err) {
        const message = err instanceof PidfileError ? err.message : `Pidfile check failed: ${errorMessage(err)}`;
        glog.error('init.cpp', 393, `osqueryd initialize failed: ${message}`);
        process.exit(1);
      }
    }
    glog.info('init.cpp', 412, `osqueryd started [version=${OSQUERY_VERSION}]`);

    try {
      const ephemeral = flags.bool('disable_database') || flags.bool('ephemeral');
      this.store = SimStore.open(ephemeral ? undefined : flags.get('database_path'));
    } catch (err) {
      return this.fatal(1, `Could not initialize database plugin: ${errorMessage(err)}`);
    }
    const store = this.store;
    this.ids = {
      uuid: readProductUuid() ?? store.settingOr('host_uuid', () => randomUUID().toUpperCase()),
      instanceId: store.settingOr('instance_id', () => randomUUID()),
    };
    this.registerCorePlugins();

    if (this.faults.faults.startDelayMs) await sleep(this.faults.faults.startDelayMs);
    if (!flags.bool('disable_extensions')) await this.startExtensionManager();
    // Timed faults count from here, once the manager socket answers: a slow start on a loaded machine must not hang
    // or exit the stand-in before anyone could reach it.
    this.faults.start();
    if (this.stopping) return;

    const configPlugin = flags.get('config_plugin');
    const activation = await this.activationError('config', configPlugin);
    if (activation) return this.fatal(EXIT_CATASTROPHIC, `Cannot activate ${configPlugin} config plugin: ${activation}`);
    this.registry.setActive('config', configPlugin);
    const configOk = await this.config.load();
    if (this.stopping) return;

    if (!flags.bool('disable_logging')) {
      const missing = await this.logger.activate();
      if (missing !== undefined)
        return this.fatal(EXIT_CATASTROPHIC, `Cannot activate ${missing} logger plugin: Unknown registry plugin: ${missing}`);
    }
    const decorations = new Decorations(this.engine, this.config, flags);
    if (!flags.bool('disable_distributed')) {
      this.distributed = new DistributedRunner({ registry: this.registry, engine: this.engine, store, flags, faults: this.faults });
      const missing = this.distributed.activate();
      if (missing !== undefined)
        return this.fatal(EXIT_CATASTROPHIC, `Cannot activate ${missing} distributed plugin: Unknown registry plugin: ${missing}`);
    }
    if (this.stopping) return;

    this.scheduler = new Scheduler({
      config: this.config,
      engine: this.engine,
      store,
      logger: this.logger,
      decorations,
      flags,
      faults: this.faults,
      hostIdentifier: () => hostIdentifier(flags, this.ids),
    });
    this.scheduler.start();
    this.distributed?.start();
    this.config.startRefresh(configOk);
    this.watchdog.start();
  }

  /** Stop and exit with `code`. Idempotent: later calls join the first. */
  shutdown(code: number, reason = ''): Promise<never> {
    this.stopping ??= (async (): Promise<never> => {
      this.exitCode = code;
      const alarm = setTimeout(() => {
        glog.error('init.cpp', 640, `Shutdown did not finish within --alarm_timeout (${this.flags.num('alarm_timeout')} s)`);
        process.exit(code);
      }, this.flags.num('alarm_timeout') * 1000);
      alarm.unref();
      glog.info('init.cpp', 602, `osqueryd is shutting down${reason}`);
      this.watchdog.stop();
      this.config.stop();
      this.scheduler?.stop();
      this.distributed?.stop();
      await this.watcher?.stop();
      await this.logger.stop();
      if (!this.faults.hung) await shutdownExtensions(this.registry, this.socket, EXTENSION_SHUTDOWN_TIMEOUT_MS);
      await this.server?.close();
      if (this.server) removeSocketFiles(this.socket);
      if (this.pidfileHeld) releasePidfile(this.flags.get('pidfile'));
      this.store?.close();
      this.faults.stop();
      process.exit(code);
    })();
    return this.stopping;
  }

  private async fatal(code: number, message: string): Promise<void> {
    glog.error('init.cpp', 718, message);
    await this.shutdown(code);
  }

  private installSignals(): void {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        if (this.stopping) process.exit(this.exitCode);
        void this.shutdown(0, ` (received ${signal})`);
      });
    }
  }

  private registerCorePlugins(): void {
    const { registry, engine, flags } = this;
    registry.addCore('config', 'filesystem', filesystemConfigPlugin(flags));
    registry.addCore('config', 'tls', tlsPlugin);
    registry.addCore('logger', 'filesystem', filesystemLoggerPlugin(flags));
    registry.addCore('logger', 'stdout', stdoutLoggerPlugin());
    registry.addCore('logger', 'tls', tlsPlugin);
    registry.addCore('logger', 'syslog', tlsPlugin);
    registry.addCore('distributed', 'tls', tlsPlugin);
    registry.addCore('sql', 'sql', sqlPlugin(engine));
    registry.setActive('sql', 'sql');
    registry.setActive('database', flags.bool('disable_database') ? 'ephemeral' : 'rocksdb');
    const tables = coreTables({
      pid: process.pid,
      startTime: this.startTime,
      hostUuid: this.ids.uuid,
      instanceId: this.ids.instanceId,
      version: OSQUERY_VERSION,
      socketPath: this.socket,
      extensionsState: flags.bool('disable_extensions') ? 'disabled' : 'active',
      buildDistro: 'osqueryd-sim',
      configHash: () => this.config.hash,
      configValid: () => this.config.valid,
      extensions: () => [...registry.extensions()].map(([uuid, info]) => ({ uuid, ...info })),
      flagRows: () => flags.rows(),
      registryRows: () => registry.rows(),
      scheduleRows: () => this.scheduler?.rows() ?? [],
    });
    // --disable_tables: a denied table does not exist for SQL ("no such table"), as in osqueryd.
    const disabled = new Set(
      flags
        .get('disable_tables')
        .split(',')
        .map((n) => n.trim().toLowerCase())
        .filter(Boolean),
    );
    for (const t of [...tables, ...fileTables()]) {
      if (disabled.has(t.spec.name.toLowerCase())) continue;
      engine.addTable(t);
      registry.addCore('table', t.spec.name, coreTablePlugin(t));
    }
  }

  /** startExtensionManager: clean stale files, bind, watch, wait for --extensions_require. */
  private async startExtensionManager(): Promise<void> {
    const { flags } = this;
    try {
      removeSocketFiles(this.socket);
      const handler = managerHandler({ registry: this.registry, flags, engine: this.engine, faults: this.faults });
      this.server = new ThriftServer(this.socket, () => new ExtensionManagerProcessor(handler));
      await this.server.listen();
    } catch (err) {
      this.server = undefined;
      glog.error('init.cpp', 470, `An error occurred during extension manager startup: ${errorMessage(err)}`);
      return;
    }
    glog.vlog('extensions.cpp', 560, `Extension manager service starting: ${this.socket}`);
    this.watcher = new ExtensionWatcher({
      registry: this.registry,
      managerPath: this.socket,
      intervalMs: () => flags.num('extensions_interval') * 1000,
      timeoutMs: () => flags.num('extensions_timeout') * 1000,
      faults: this.faults,
    });
    this.watcher.start();
    const names = requiredNames(flags.get('extensions_require'));
    if (names.length === 0) return;
    const unmet = await waitForRequired(this.registry, this.socket, names, flags.num('extensions_timeout') * 1000);
    if (unmet !== undefined) {
      const message = `Required extension not found or not loaded: ${unmet}`;
      glog.warning('extensions.cpp', 598, message);
      glog.error('init.cpp', 470, `An error occurred during extension manager startup: ${message}`);
    }
  }

  /** initActivePlugin: why `name` cannot be activated in `registry`, or undefined. Extension plugins are pinged. */
  private async activationError(registry: string, name: string): Promise<string | undefined> {
    const target = this.registry.resolveExact(registry, name);
    if (!target) return `Unknown registry plugin: ${name}`;
    if (target.kind === 'extension' && !(await extensionHealthy(extensionSocketPath(this.socket, target.uuid)))) {
      return `Extension ping failed for ${name}`;
    }
    return undefined;
  }

  private attachTable(uuid: number, name: string, routes: Parameters<typeof extensionTable>[1]): void {
    try {
      this.engine.addTable(extensionTable(name, routes, (request) => this.registry.call('table', name, request)));
    } catch (err) {
      glog.warning('registry.cpp', 212, `Cannot attach table ${name} of extension ${uuid}: ${errorMessage(err)}`);
    }
  }
}

export async function runDaemon(flags: FlagValues, faults: Faults): Promise<void> {
  await new Daemon(flags, faults).run();
}
