/**
 * One run of one registration's osqueryd: launch, connect, serve our
 * extension, watch health, end. A new run (new run id, new socket and pidfile
 * names) is a new OsqueryInstance; the supervision loop (supervisor.ts) makes
 * them one after another.
 *
 * The run ends on the first of: osqueryd exiting, our extension server
 * stopping (osqueryd gone or asked us to shut down), `healthMaxFailures`
 * failed health checks in a row, a launch step failing, or stop()/kill().
 * Ending runs the cleanup stack (cleanup.ts), records the exit in the run
 * history and settles `exited`. The first reason is kept; later ones are
 * only logged.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { ulid } from 'ulid';
import { LauncherError, errorMessage, type ErrorCode } from '../../errors.js';
import { componentLogger, silentLogger, type Logger } from '../../log/logger.js';
import { ExtensionManagerClient } from '../../osquery/client.js';
import type { ExtensionServer } from '../../osquery/extension-server.js';
import type { Row } from '../../osquery/plugins.js';
import type { Registration } from '../../store/registrations.js';
import type { RunHistoryStore } from '../../store/run-history.js';
import { CleanupStack } from './cleanup.js';
import { connectManager, readOsqueryInfo, startExtensionServer, verifyRegistered, waitForSocket } from './connect.js';
import { extensionFlagNames, type ExtensionFactory, type InstanceExtension, type RunEndCause, type RunView } from './extension.js';
import { augeasLensesPath, buildOsquerydArgs, type FlagTimings } from './flags.js';
import { checkInstanceHealth, startHealthMonitor } from './health.js';
import { DEFAULT_INSTANCE_TIMINGS, type InstanceTimings } from './instance-options.js';
import { isLive, StateMachine, type InstanceState } from './instance-state.js';
import { isolationGid } from './isolation.js';
import { planInstanceIsolation, type InstanceIsolation, type IsolationHost, type ResolvedIsolation } from './isolation-plan.js';
import { lastWords } from './last-words.js';
import { planLimits, type LimitsConfig, type LimitsMode, type LimitsPlan } from './limits.js';
import { OutputRing } from './output-ring.js';
import { instancePaths, type InstancePaths } from './paths.js';
import { describeExit, OsquerydProcess, type ProcessExit } from './process.js';
import { removeRunFiles, writeLaunchRecord } from './run-files.js';
import { lastScheduledQuery } from './scheduled-query.js';
import { delay } from './wait.js';
import type { RegistrationId } from '../../registration.js';

/** How many final output lines may hold osqueryd's reason for exiting. */
const LAST_WORDS_LINES = 5;
/** Bound on waiting for osqueryd's pipes to drain after it exited. */
const OUTPUT_DRAIN_MS = 500;
/** How long a lost manager connection waits for osqueryd's exit to be reported before it is the run's end reason. */
const EXIT_REPORT_GRACE_MS = 250;
/** Bound on the extension's runEnded hook (it records incidents in the store). */
const RUN_ENDED_HOOK_MS = 5_000;

export interface OsqueryInstanceOptions {
  root: string;
  /** From resolveSocketDir(root). */
  socketDir: string;
  registration: Registration;
  osquerydPath: string;
  extensionFactory: ExtensionFactory;
  runId?: string;
  history?: RunHistoryStore;
  limits?: LimitsConfig;
  timings?: Partial<InstanceTimings>;
  flagTimings?: Partial<FlagTimings>;
  /** Extra environment for osqueryd (on top of the inherited one). */
  env?: Record<string, string>;
  /** `--tls_server_certs` (flags.ts tlsServerCertsPath). */
  tlsServerCerts?: string;
  /** Isolation settings in force (isolation.ts resolveIsolation); none when unset. */
  isolation?: ResolvedIsolation;
  isolationHost?: IsolationHost;
  /** Output lines kept for output(). */
  outputCapacity?: number;
  logger?: Logger;
}

export interface InstanceExit {
  runId: string;
  /** Why the run ended; undefined when stop()/kill() asked for it. */
  error?: Error;
  requested: boolean;
  process?: ProcessExit;
  /** The extension registered (the run got to 'running'). */
  connected: boolean;
  /** Time from 'running' to the end; 0 when never running. */
  uptimeMs: number;
  /** The kernel's OOM killer ended osqueryd (its memory cgroup counted a kill). */
  oomKilled: boolean;
}

export interface StatusOptions {
  /** Include the extension's own status (default true). */
  extension?: boolean;
}

export interface InstanceStatus {
  run_id: string;
  state: InstanceState;
  pid: number | null;
  started_at: number | null;
  connected_at: number | null;
  uptime_seconds: number;
  healthy: boolean;
  health_failures: number;
  last_error: string | null;
  limits: { mode: LimitsMode; memory_mb: number | null; cpu_percent: number | null; fallback_reason?: string };
  /** Filesystem isolation in force for this run (issue 22); absent before a run exists. */
  isolation?: InstanceIsolation['status'];
  osqueryd_path: string;
  osqueryd_version: string | null;
  instance_id: string | null;
  extension: Record<string, unknown> | null;
}

export class OsqueryInstance {
  readonly runId: string;
  readonly registrationId: RegistrationId;
  readonly paths: InstancePaths;
  readonly output: OutputRing;
  readonly exited: Promise<InstanceExit>;
  private readonly o: OsqueryInstanceOptions;
  private readonly t: InstanceTimings;
  private readonly log: Logger;
  /** The logger given, for children with their own `component`. */
  private readonly baseLog: Logger;
  private readonly sm: StateMachine;
  private readonly ctl = new AbortController();
  private readonly cleanup: CleanupStack;
  private resolveExited!: (exit: InstanceExit) => void;
  private launching: Promise<void> | undefined;
  private ending: Promise<void> | undefined;
  private endReason: Error | undefined;
  private requested = false;
  /** The run ends because osqueryd stopped answering: nothing is sent to it any more. */
  private unresponsive = false;
  private proc: OsquerydProcess | undefined;
  private ext: InstanceExtension | undefined;
  private readonly servers: ExtensionServer[] = [];
  private manager: ExtensionManagerClient | undefined;
  private queryClient: ExtensionManagerClient | undefined;
  private limits: LimitsPlan | undefined;
  private isolation: InstanceIsolation | undefined;
  private startedAt: number | undefined;
  /** What this run's extension may know about it (ExtensionContext.run). */
  private runView(startedAt: number): RunView {
    return {
      registrationId: this.registrationId,
      runId: this.runId,
      startedAt,
      instanceId: () => this.info.instanceId,
      uptimeSeconds: () =>
        this.connectedAt === undefined ? undefined : Math.floor(((this.endedAt ?? Date.now()) - this.connectedAt) / 1000),
    };
  }
  private connectedAt: number | undefined;
  private endedAt: number | undefined;
  private healthFailures = 0;
  private lastError: string | undefined;
  private info: { instanceId?: string; version?: string } = {};
  /** The end reason made when osqueryd exited on its own (its output may say why). */
  private osquerydExit: LauncherError | undefined;
  /** Settles once the extension manager answered (for ExtensionContext.query). */
  private managerUp!: () => void;
  private readonly managerReady = new Promise<void>((resolve) => (this.managerUp = resolve));
  private oomKilled = false;
  /** The reason the extension gave when it ended the run (ExtensionContext.endRun). */
  private extensionEnd: Error | undefined;
  /** The reason the run ended because osqueryd stopped answering. */
  private unresponsiveEnd: Error | undefined;

  constructor(options: OsqueryInstanceOptions) {
    this.o = options;
    this.runId = options.runId ?? ulid();
    this.registrationId = options.registration.id;
    this.paths = instancePaths(options.root, this.registrationId, this.runId, options.socketDir);
    this.t = { ...DEFAULT_INSTANCE_TIMINGS, ...options.timings };
    this.baseLog = options.logger ?? silentLogger();
    this.log = componentLogger(this.baseLog, 'osquery_instance', this.bindings());
    this.sm = new StateMachine(this.log);
    this.cleanup = new CleanupStack(this.log, this.t.cleanupStepTimeoutMs);
    this.output = new OutputRing({ runId: this.runId, ...(options.outputCapacity ? { capacity: options.outputCapacity } : {}) });
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
  }

  get state(): InstanceState {
    return this.sm.state;
  }

  private bindings(extra: Record<string, string | number> = {}): Record<string, string | number> {
    return { registration_id: this.registrationId, run_id: this.runId, ...extra };
  }

  /** The pid osqueryd was spawned with (also after it exited). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** osqueryd's pid while it runs; undefined before the spawn and once it exited (issue 13: status shows no dead pid). */
  get runningPid(): number | undefined {
    return this.proc && !this.proc.hasExited ? this.proc.pid : undefined;
  }

  get healthy(): boolean {
    return this.sm.state === 'running';
  }

  /**
   * Start osqueryd and get our extension registered. Resolves once the run is
   * 'running'; rejects with the reason the run ended otherwise (the run is then
   * ending or over: await `exited`). Only once per instance.
   */
  launch(): Promise<void> {
    if (this.launching) throw new LauncherError('E_INTERNAL', `instance ${this.registrationId}/${this.runId} was already launched`);
    if (this.ending)
      return Promise.reject(new LauncherError('E_SHUTDOWN', `instance ${this.registrationId}/${this.runId} was stopped before launch`));
    this.launching = this.doLaunch().catch((err: unknown) => {
      const error = err instanceof Error ? err : new Error(String(err));
      void this.end(error);
      throw this.endReason ?? error;
    });
    return this.launching;
  }

  /** Graceful end: deregister, SIGTERM the group, SIGKILL after the grace period. Idempotent; resolves when over. */
  async stop(): Promise<void> {
    this.requested ||= !this.endReason;
    await this.end(undefined);
  }

  /** Immediate end: SIGKILL the group now, then clean up. Idempotent; escalates a stop in progress. */
  async kill(): Promise<void> {
    this.requested ||= !this.endReason;
    void this.proc?.kill();
    await this.end(undefined, { immediate: true });
  }

  /** Run SQL on this osqueryd. E_SHUTDOWN unless the instance is running. */
  async query(sql: string, timeoutMs: number): Promise<Row[]> {
    if (!isLive(this.sm.state) || !this.queryClient) {
      throw new LauncherError('E_SHUTDOWN', `registration ${this.registrationId} run ${this.runId} is ${this.sm.state}, not running`);
    }
    return this.queryClient.query(sql, timeoutMs);
  }

  /** `extension: false` skips the extension's own status (SQLite reads): for hot readers such as state tables. */
  status(options: StatusOptions = {}): InstanceStatus {
    const limits = this.o.registration.limits;
    const st: InstanceStatus = {
      run_id: this.runId,
      state: this.sm.state,
      pid: this.runningPid ?? null,
      started_at: this.startedAt ?? null,
      connected_at: this.connectedAt ?? null,
      uptime_seconds: this.connectedAt ? Math.floor(((this.endedAt ?? Date.now()) - this.connectedAt) / 1000) : 0,
      healthy: this.healthy,
      health_failures: this.healthFailures,
      last_error: this.lastError ?? null,
      limits: { mode: this.limits?.mode ?? 'none', memory_mb: limits.memoryMb ?? null, cpu_percent: limits.cpuPercent ?? null },
      isolation: this.isolation?.status ?? {
        mode: this.o.isolation?.mode ?? 'none',
        disabled_tables: this.o.isolation?.disableTables ?? [],
      },
      osqueryd_path: this.o.osquerydPath,
      osqueryd_version: this.info.version ?? null,
      instance_id: this.info.instanceId ?? null,
      extension: options.extension === false ? null : this.extensionStatus(),
    };
    if (this.limits?.fallbackReason) st.limits.fallback_reason = this.limits.fallbackReason;
    return st;
  }

  private extensionStatus(): Record<string, unknown> | null {
    try {
      return this.ext?.status?.() ?? null;
    } catch (err) {
      return { error: errorMessage(err) };
    }
  }

  private history(what: string, fn: (h: RunHistoryStore) => void): void {
    if (!this.o.history) return;
    try {
      fn(this.o.history);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, `run history: ${what} failed`);
    }
  }

  private checkpoint(): void {
    if (this.ctl.signal.aborted) throw this.endReason ?? new LauncherError('E_SHUTDOWN', `run ${this.runId} stopped during launch`);
  }

  private async doLaunch(): Promise<void> {
    const { o, t, paths } = this;
    this.sm.set('starting');
    this.startedAt = Date.now();
    // Never throws: an unusable cgroup falls back to watchdog flags.
    this.limits = planLimits(this.registrationId, o.registration.limits, o.limits);
    const limits = this.limits;
    this.cleanup.push('release limits', () => limits.release());
    this.history('start', (h) =>
      h.start({ registrationId: this.registrationId, runId: this.runId, osquerydPath: o.osquerydPath, limitsMode: limits.mode }),
    );
    mkdirSync(paths.registrationDir, { recursive: true, mode: 0o700 });
    rmSync(paths.socketPath, { force: true }); // stale socket (docs/protocol/device.md#launch)

    if (limits.fallbackReason) this.log.warn({ reason: limits.fallbackReason }, 'resource limits: falling back to the osquery watchdog');

    this.cleanup.push('stop extension', () => this.ext?.stop());
    const extLog = componentLogger(this.baseLog, 'extension', this.bindings());
    this.ext = o.extensionFactory({
      registrationId: this.registrationId,
      runId: this.runId,
      registration: o.registration,
      logger: extLog,
      query: (sql, timeoutMs) => this.earlyQuery(sql, timeoutMs),
      run: this.runView(this.startedAt ?? Date.now()),
      endRun: (reason) => {
        if (this.ending) return;
        this.extensionEnd = reason;
        void this.end(reason, { unresponsive: true });
      },
    });
    const names = extensionFlagNames(this.ext);
    try {
      await this.ext.start();
    } catch (err) {
      throw new LauncherError(
        'E_LAUNCH',
        `extension ${this.ext.name} for registration ${this.registrationId} failed to start: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    this.checkpoint();

    this.isolation = planInstanceIsolation(o.isolation, o.isolationHost);
    const isolation = this.isolation;
    if (isolation.status.reason)
      this.log.warn({ reason: isolation.status.reason }, 'filesystem isolation unavailable: osqueryd sees the whole host');
    const args = buildOsquerydArgs({
      names,
      pidfilePath: paths.pidfilePath,
      databasePath: paths.databasePath,
      socketPath: paths.socketPath,
      watchdogFlags: limits.watchdogFlags,
      userFlags: o.registration.osqueryFlags,
      timings: o.flagTimings ?? {},
      tlsServerCerts: o.tlsServerCerts,
      augeasLenses: augeasLensesPath(o.root),
      isolationFlags: isolation.flags,
    });
    this.cleanup.push('remove run files', async () => {
      const left = await removeRunFiles(paths.socketPath);
      if (left.length > 0) this.log.warn({ files: left }, 'run files left behind');
    });
    this.cleanup.push('terminate osqueryd', async () => {
      const exit = await this.proc?.terminate(t.stopGraceMs);
      if (exit) this.log.info({ exit }, `osqueryd ${describeExit(exit)}`);
    });
    let outLog = componentLogger(this.baseLog, 'osqueryd', this.bindings());
    this.log.info({ binary: o.osquerydPath, args }, 'starting osqueryd');
    const command = isolation.command({
      osquerydPath: o.osquerydPath,
      args,
      root: o.root,
      // An updated osqueryd lives under the root (<root>/osqueryd/<version>/, issue 17): its directory is bound back,
      // read-only (a tenant's osqueryd must not be able to change a binary the vendor runs too).
      readOnly: [dirname(o.osquerydPath)],
      keep: [
        paths.registrationDir,
        paths.socketDir,
        augeasLensesPath(o.root) ?? '',
        o.tlsServerCerts ?? '',
        dirname(o.osquerydPath),
      ].filter(Boolean),
      gid: isolationGid(this.registrationId),
    });
    this.proc = await OsquerydProcess.spawn({
      ...command,
      env: { SYSTEM_VERSION_COMPAT: '0', ...o.env },
      onLine: (stream, line) => {
        this.output.append(stream, line);
        if (stream === 'stderr') outLog.info({ stream }, line);
        else outLog.debug({ stream }, line);
      },
    });
    const proc = this.proc;
    outLog = outLog.child({ pid: proc.pid });
    try {
      writeLaunchRecord(paths.runRecordPath, {
        pid: proc.pid,
        registration_id: this.registrationId,
        run_id: this.runId,
        socket: paths.socketPath,
        supervisor_pid: process.pid,
        started_at: new Date(this.startedAt).toISOString(),
      });
    } catch (err) {
      throw new LauncherError('E_LAUNCH', `cannot write launch record ${paths.runRecordPath}: ${errorMessage(err)}`, { cause: err });
    }
    let oomBaseline: number | undefined;
    void proc.exited.then((exit) => {
      const phase = isLive(this.sm.state) ? 'while running' : this.sm.state === 'stopping' ? 'while stopping' : 'during launch';
      const how = `${describeExit(exit)} ${phase}`;
      // The kernel counts OOM kills per memory cgroup: a rise means this SIGKILL was the OOM killer (issue 13).
      const oom = oomBaseline !== undefined && (limits.oomKills() ?? oomBaseline) > oomBaseline;
      this.oomKilled = oom;
      this.osquerydExit = oom
        ? new LauncherError(
            'E_LAUNCH',
            `oom_killed: osqueryd pid ${proc.pid} was killed by the kernel OOM killer at its memory limit (${o.registration.limits.memoryMb} MB, ${limits.mode}; ${how})`,
          )
        : new LauncherError('E_LAUNCH', `osqueryd pid ${proc.pid} ${how}`);
      void this.end(this.osquerydExit);
    });
    this.history('pid', (h) => h.setPid(this.runId, proc.pid, limits.mode));
    limits.attach(proc.pid);
    oomBaseline = limits.oomKills();
    this.checkpoint();

    this.sm.set('connecting', { pid: proc.pid });
    this.cleanup.push('close clients', () => {
      this.manager?.close();
      this.queryClient?.close();
    });
    this.manager = new ExtensionManagerClient(paths.socketPath, { timeoutMs: t.callTimeoutMs });
    this.queryClient = new ExtensionManagerClient(paths.socketPath, { timeoutMs: t.callTimeoutMs });
    await waitForSocket(paths.socketPath, t, this.ctl.signal);
    await connectManager(this.manager, t, this.ctl.signal);
    this.managerUp();
    // osqueryd gone (exited, or stopped answering): no deregistration call that can only time out (issue 14).
    this.cleanup.push('stop extension servers', () =>
      Promise.all(this.servers.map((s) => s.stop({ managerGone: proc.hasExited || this.unresponsive }))).then(() => undefined),
    );
    const server = await startExtensionServer({
      socketPath: paths.socketPath,
      manager: this.manager,
      extension: this.ext,
      timings: t,
      signal: this.ctl.signal,
      logger: componentLogger(this.baseLog, 'extension_server', this.bindings({ extension: this.ext.name })),
      onServer: (s) => this.servers.push(s),
    });
    void server.done.then(async (reason) => {
      if (!reason) return;
      // A dying osqueryd resets our connections just before its exit is reported: give the exit the
      // chance to be the recorded cause ("killed by SIGKILL"), not the connection it took down.
      const grace = new AbortController();
      await Promise.race([proc.exited, delay(EXIT_REPORT_GRACE_MS, grace.signal)]);
      grace.abort();
      void this.end(new LauncherError('E_THRIFT_CONNECTION', `extension ${server.name} stopped: ${reason.message}`, { cause: reason }), {
        unresponsive: true,
      });
    });
    this.checkpoint();
    await verifyRegistered(this.manager, this.ext.name, t);
    this.checkpoint();

    try {
      this.info = await readOsqueryInfo(this.manager, t);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'osquery_info not readable; version unknown');
    }
    this.connectedAt = Date.now();
    this.history('connected', (h) => h.setConnected(this.runId, { ...this.info, at: new Date(this.connectedAt!).toISOString() }));
    this.checkpoint();
    this.sm.set('running', { pid: proc.pid, version: this.info.version, ms_to_running: this.connectedAt - this.startedAt });
    this.startHealth([{ name: server.name, socketPath: server.socketPath }]);
  }

  /** ExtensionContext.query: waits for the manager, not for 'running'. */
  private async earlyQuery(sql: string, timeoutMs: number): Promise<Row[]> {
    const ended = () =>
      new LauncherError('E_SHUTDOWN', `registration ${this.registrationId} run ${this.runId} ended before its osqueryd answered`);
    if (this.ctl.signal.aborted) throw ended();
    let onAbort!: () => void;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(ended());
      this.ctl.signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([this.managerReady, aborted]);
    } finally {
      this.ctl.signal.removeEventListener('abort', onAbort);
    }
    return this.queryClient!.query(sql, timeoutMs);
  }

  private startHealth(servers: Array<{ name: string; socketPath: string }>): void {
    const manager = this.manager!;
    startHealthMonitor({
      check: () => checkInstanceHealth({ manager, servers, timeoutMs: this.t.healthTimeoutMs }),
      intervalMs: this.t.healthIntervalMs,
      startupDelayMs: this.t.healthStartupDelayMs,
      maxFailures: this.t.healthMaxFailures,
      signal: this.ctl.signal,
      onResult: (err, failures) => {
        this.healthFailures = failures;
        if (err) {
          this.lastError = err.message;
          this.log.warn({ failures, err: err.message }, 'health check failed');
        }
        if (isLive(this.sm.state)) this.sm.set(err ? 'unhealthy' : 'running');
      },
      onGiveUp: (err) => void this.end(err, { unresponsive: true }),
    });
  }

  /**
   * osqueryd's own last words when it exited by itself (lastWords(): a glog
   * ERROR/FATAL line such as "Could not initialize database plugin: EROFS ...",
   * or gflags' error line), appended to `reason` so status and history say
   * why, not only that it exited (issues 9, 13). Waits briefly for the pipes to drain.
   */
  private async withLastOutputError(reason: LauncherError): Promise<LauncherError> {
    if (this.proc) {
      const drained = new AbortController();
      await Promise.race([this.proc.outputEnded, delay(OUTPUT_DRAIN_MS, drained.signal)]);
      drained.abort();
    }
    const { lines } = this.output.read(this.output.nextSeq - LAST_WORDS_LINES);
    const text = lastWords(lines, this.proc?.exitStatus?.signal === null);
    if (!text) return reason;
    return new LauncherError(reason.code, `${reason.message}: ${text}`, { cause: reason.cause });
  }

  /** Why the run ended, for the extension's runEnded hook. */
  private endCause(reason: Error | undefined): RunEndCause {
    if (!reason) return 'requested';
    if (reason === this.extensionEnd) return 'extension';
    if (reason === this.osquerydExit || (this.osquerydExit && reason.message.startsWith(this.osquerydExit.message)))
      return this.oomKilled ? 'oom_killed' : 'crashed';
    if (reason === this.unresponsiveEnd) return 'unresponsive';
    return 'other';
  }

  /** Tell the extension how the run ended (bounded; a failing hook is only logged). */
  private async reportRunEnd(reason: Error | undefined): Promise<string | undefined> {
    const hook = this.ext?.runEnded;
    if (!hook) return undefined;
    const report = {
      cause: this.endCause(reason),
      endedAt: this.endedAt ?? Date.now(),
      ...(reason ? { error: reason.message } : {}),
      ...(() => {
        const last = lastScheduledQuery(this.output.read().lines);
        return last ? { lastScheduled: last } : {};
      })(),
    };
    const timer = new AbortController();
    try {
      return await Promise.race([
        Promise.resolve(hook.call(this.ext, report)),
        delay(RUN_ENDED_HOOK_MS, timer.signal).then(() => {
          if (!timer.signal.aborted) this.log.warn({ ms: RUN_ENDED_HOOK_MS }, 'extension runEnded hook did not finish in time');
          return undefined;
        }),
      ]);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'extension runEnded hook failed');
      return undefined;
    } finally {
      timer.abort();
    }
  }

  /**
   * Begin ending the run (first reason wins) and resolve once it is over.
   * `unresponsive`: osqueryd stopped answering, so its termination starts at
   * once instead of after our servers' deregistration calls time out on it.
   */
  private end(reason: Error | undefined, opts: { immediate?: boolean; unresponsive?: boolean } = {}): Promise<void> {
    if (this.ending) {
      if (reason && reason !== this.endReason) this.log.debug({ err: reason.message }, 'run already ending; later reason ignored');
      return this.ending;
    }
    this.endReason = reason;
    if (reason && opts.unresponsive) this.unresponsiveEnd = reason;
    if (reason) this.lastError = reason.message;
    this.ctl.abort(reason);
    this.sm.set('stopping', reason ? { err: reason.message } : { requested: true, immediate: opts.immediate === true });
    if (opts.unresponsive) {
      this.unresponsive = true;
      void this.proc?.terminate(this.t.stopGraceMs);
    }
    this.ending = (async () => {
      await this.launching?.catch(() => undefined);
      await this.cleanup.run();
      if (reason && reason === this.osquerydExit) {
        reason = await this.withLastOutputError(this.osquerydExit);
        this.lastError = reason.message;
      }
      this.output.close();
      this.endedAt = Date.now();
      const note = await this.reportRunEnd(reason);
      if (note && reason) {
        reason = new LauncherError(isLauncherErrorCode(reason), `${reason.message}; ${note}`, { cause: reason });
        this.lastError = reason.message;
      }
      const exit: InstanceExit = {
        runId: this.runId,
        requested: this.requested && !reason,
        connected: this.connectedAt !== undefined,
        uptimeMs: this.connectedAt ? this.endedAt - this.connectedAt : 0,
        oomKilled: this.oomKilled,
      };
      if (reason) exit.error = reason;
      const processExit = this.proc?.exitStatus;
      if (processExit) exit.process = processExit;
      this.history('exit', (h) =>
        h.setExited(this.runId, {
          code: processExit?.code ?? null,
          signal: processExit?.signal ?? null,
          ...(reason ? { error: reason.message } : {}),
        }),
      );
      this.sm.set(reason ? 'failed' : 'exited', processExit ? { exit: describeExit(processExit) } : {});
      this.resolveExited(exit);
    })();
    return this.ending;
  }
}

/** The code of a run's end reason (E_LAUNCH for a plain Error). */
function isLauncherErrorCode(err: Error): ErrorCode {
  return err instanceof LauncherError ? err.code : 'E_LAUNCH';
}
