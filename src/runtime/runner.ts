/**
 * The Runner owns the set of registrations and one supervision loop
 * (supervisor.ts) per registration. It is a RunGroup actor: execute() takes
 * the root's supervisor lock, reaps what a dead predecessor left, loads the
 * persisted registrations and supervises them until interrupt().
 *
 * Registrations can be added and removed while it runs; each change touches
 * only that registration's loop. A registration added at runtime is persisted
 * (src/store/registrations.ts) and comes back on the next start.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ulid } from 'ulid';
import { LauncherError, errorMessage } from '../errors.js';
import { componentLogger, silentLogger, type Logger } from '../log/logger.js';
import type { Row } from '../osquery/plugins.js';
import { openDatabase, type SqliteDatabase } from '../store/database.js';
import { RegistrationStore, validateRegistrationId, type Registration, type RegistrationInput } from '../store/registrations.js';
import { RunHistoryStore, type RunRecord } from '../store/run-history.js';
import type { BackoffOptions } from './backoff.js';
import type { ExtensionFactory } from './instance/extension.js';
import { normaliseUserFlags, type FlagTimings } from './instance/flags.js';
import { checkKnownFlags } from './known-flags.js';
import type { InstanceTimings } from './instance/instance-options.js';
import { clearSupervisorGroups, scopeLimits, supervisorGroupDirs } from './cgroup-scope.js';
import { enterSupervisorLeaf } from './instance/cgroup-v2-leaf.js';
import type { LimitsConfig } from './instance/limits.js';
import { OsqueryInstance, type StatusOptions } from './instance/osquery-instance.js';
import type { OutputRing } from './instance/output-ring.js';
import { registrationDir, resolveSocketDir } from './instance/paths.js';
import { resolveIsolation, type IsolationHost } from './instance/isolation.js';
import { reapOrphans, type ReapResult } from './reaper.js';
import type { Actor } from '../rungroup/rungroup.js';
import { SupervisorLock } from './supervisor-lock.js';
import { idleStatus, RegistrationSupervisor, type RegistrationStatus } from './supervisor.js';
import { pollUntil } from './instance/wait.js';
import type { RegistrationId } from '../registration.js';

export interface RunnerOptions {
  /** Root directory: registrations, the socket dir (when short enough), the lock, the database by default. */
  root: string;
  /** The osqueryd binary of every run, unless `osquerydFor` chooses another for a registration. */
  osquerydPath: string;
  /**
   * The binary of a registration's next run (issue 17: the update module's choice, an installed version under
   * `<root>/osqueryd/<version>/`); undefined keeps `osquerydPath`. Asked once per run, so a restart takes a new choice.
   */
  osquerydFor?: (registration: Registration) => string | undefined;
  extensionFactory: ExtensionFactory;
  /** The supervisor's database; default `<root>/launcher.sqlite` (opened and closed by the Runner). */
  db?: SqliteDatabase;
  /** Runs kept per registration. Default 20. */
  historyKeep?: number;
  timings?: Partial<InstanceTimings>;
  flagTimings?: Partial<FlagTimings>;
  backoff?: Partial<BackoffOptions>;
  limits?: LimitsConfig;
  /** Extra osqueryd environment per run (a seam for fault injection in tests, or per-tenant settings). */
  instanceEnv?: (registration: Registration, runId: string) => Record<string, string> | undefined;
  outputCapacity?: number;
  /** `--tls_server_certs` for every osqueryd (flags.ts tlsServerCertsPath). */
  tlsServerCerts?: string;
  /** The vendor's registration: isolation `none` by default; every other registration is a tenant (issue 22). */
  vendorId?: string;
  /** What the host can do for filesystem isolation (isolation.ts); a reason here makes it `unavailable`. */
  isolationHost?: IsolationHost;
  logger?: Logger;
}

type RunnerState = 'idle' | 'running' | 'stopping' | 'stopped';

export class Runner implements Actor {
  readonly name = 'osquery_runner';
  readonly root: string;
  private readonly o: RunnerOptions;
  private readonly log: Logger;
  private readonly baseLog: Logger;
  private readonly db: SqliteDatabase;
  private readonly ownsDb: boolean;
  private readonly registrations: RegistrationStore;
  private readonly runs: RunHistoryStore;
  private readonly supervisors = new Map<string, RegistrationSupervisor>();
  private state: RunnerState = 'idle';
  private socketDir: string | undefined;
  private lock: SupervisorLock | undefined;
  private interrupted!: () => void;
  private readonly interruptedP = new Promise<void>((resolve) => (this.interrupted = resolve));
  private stopping: Promise<void> | undefined;
  /** Limits config of every run: the cgroup group made unique to this root (cgroup-scope.ts). */
  private limits: LimitsConfig | undefined;
  /** This supervisor's cgroup directories, once execute() computed them. */
  private cgroupDirs: string[] = [];
  /** What the reaper found at start. */
  reaped: ReapResult | undefined;

  constructor(options: RunnerOptions) {
    this.o = options;
    this.root = options.root;
    this.baseLog = options.logger ?? silentLogger();
    this.log = componentLogger(this.baseLog, 'runner');
    this.ownsDb = options.db === undefined;
    this.db = options.db ?? openDatabase(join(options.root, 'launcher.sqlite'));
    this.registrations = new RegistrationStore(this.db);
    this.runs = new RunHistoryStore(this.db, options.historyKeep !== undefined ? { keep: options.historyKeep } : {});
  }

  /** Run until interrupted. Rejects when the lock is held by a live supervisor or the socket directory is unusable. */
  async execute(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return this.shutdown(); // interrupted before it ran
    if (this.state !== 'idle')
      throw new LauncherError('E_INVALID_ARGUMENT', `runner for ${this.root} is ${this.state}; execute() runs once`);
    this.state = 'running';
    try {
      this.lock = SupervisorLock.acquire(this.root);
      // Under systemd (INVOCATION_ID is set for every service) on cgroup v2: leave the delegated cgroup's root to the registration groups.
      if (process.env.INVOCATION_ID && this.o.limits?.cgroup !== 'off' && process.platform === 'linux') {
        const leaf = enterSupervisorLeaf({ ...(this.o.limits?.fsRoot ? { fsRoot: this.o.limits.fsRoot } : {}) });
        this.log[leaf.skipped.length > 0 || (leaf.reason && !leaf.reason.startsWith('not cgroup v2')) ? 'warn' : 'info'](
          { ...leaf },
          'cgroups: supervisor leaf',
        );
      }
      this.limits = scopeLimits(this.root, this.o.limits);
      this.cgroupDirs = supervisorGroupDirs(this.limits);
      this.reaped = await reapOrphans(this.root, { logger: this.log });
      // A dead predecessor's osqueryds that still sit in our cgroups (the records may be gone).
      for (const pid of await clearSupervisorGroups(this.cgroupDirs, this.log))
        if (!this.reaped.killed.includes(pid)) this.reaped.killed.push(pid);
      const closed = await this.runs.closeUnfinished('supervisor exited without recording this run; reaped at the next start');
      if (closed > 0) this.log.warn({ runs: closed }, 'closed runs left open by a previous supervisor');
      this.socketDir = resolveSocketDir(this.root);
      for (const reg of this.registrations.list()) if (!reg.disabledReason) this.startSupervisor(reg);
      this.log.info({ registrations: this.supervisors.size, socket_dir: this.socketDir }, 'runner started');
    } catch (err) {
      this.state = 'stopping';
      await this.shutdown();
      throw err;
    }
    await this.interruptedP;
    await this.shutdown();
  }

  /** The runner is stopping or stopped (a run ending now is the shutdown, not a verdict on it). */
  get shuttingDown(): boolean {
    return this.state === 'stopping' || this.state === 'stopped';
  }

  /** The socket directory in use (undefined until execute() got that far). */
  get socketDirectory(): string | undefined {
    return this.socketDir;
  }

  /** Stop every instance (in parallel) and return from execute(). Safe before, during and after execute(). */
  async interrupt(err?: Error): Promise<void> {
    const wasIdle = this.state === 'idle';
    if (this.state === 'idle' || this.state === 'running') this.state = 'stopping';
    this.log.info({ err: err?.message }, 'runner interrupted');
    this.interrupted();
    if (wasIdle) await this.shutdown(); // execute() never ran: release what the constructor opened
    await this.stopping;
  }

  /**
   * Persist a registration and, while running, start supervising it.
   * E_INVALID_REGISTRATION_ID, E_INVALID_ARGUMENT (flags, including flags the
   * osqueryd binary's --help does not list; limits), E_ALREADY_EXISTS, E_SHUTDOWN.
   */
  async add(input: RegistrationInput): Promise<RegistrationStatus> {
    const id = validateRegistrationId(input.id);
    this.assertOpen(`add ${id}`);
    const where = `registration ${id} osquery flags`;
    normaliseUserFlags(input.osqueryFlags ?? [], where);
    await checkKnownFlags(this.o.osquerydPath, input.osqueryFlags ?? [], where, this.log);
    this.assertOpen(`add ${id}`);
    const reg = this.registrations.add(input);
    await this.registrations.written(); // durable before it runs (waits, without blocking, for another process's lock)
    this.log.info({ registration_id: id }, 'registration added');
    if (this.state === 'running') this.startSupervisor(reg);
    return this.statusOf(id);
  }

  /**
   * Re-enroll an existing registration with new settings: its instance stops,
   * `beforeStart` runs (the caller forgets the old enrollment), and a new
   * instance starts with the new settings. Nothing else is touched.
   * E_NOT_FOUND for an unknown id; validation errors as add().
   */
  async replace(input: RegistrationInput, beforeStart?: () => void): Promise<RegistrationStatus> {
    const id = validateRegistrationId(input.id);
    this.assertOpen(`re-enroll ${id}`);
    const where = `registration ${id} osquery flags`;
    normaliseUserFlags(input.osqueryFlags ?? [], where);
    await checkKnownFlags(this.o.osquerydPath, input.osqueryFlags ?? [], where, this.log);
    this.assertOpen(`re-enroll ${id}`);
    const sup = this.supervisors.get(id);
    const reg = this.registrations.update(input);
    await this.registrations.written();
    this.supervisors.delete(id);
    await sup?.stop();
    beforeStart?.();
    this.log.info({ registration_id: id }, 'registration re-enrolled');
    if (this.state === 'running') this.startSupervisor(reg);
    return this.statusOf(id);
  }

  /** Stop its instance, forget it and delete its files (database, history). E_NOT_FOUND for an unknown id. */
  async remove(id: RegistrationId): Promise<void> {
    validateRegistrationId(id);
    this.assertOpen(`remove ${id}`);
    const sup = this.supervisors.get(id);
    if (!sup && !this.registrations.get(id)) throw new LauncherError('E_NOT_FOUND', `registration ${id} not found`);
    this.registrations.remove(id);
    this.supervisors.delete(id);
    await sup?.stop();
    void this.runs.removeRegistration(id);
    rmSync(registrationDir(this.root, id), { recursive: true, force: true });
    await this.registrations.written();
    this.log.info({ registration_id: id }, 'registration removed');
  }

  /** Relaunch one instance now (no backoff). Resolves when the new run's launch settled. */
  async restart(id: RegistrationId): Promise<RegistrationStatus> {
    this.assertOpen(`restart ${id}`);
    await this.supervisor(id).restart();
    return this.statusOf(id);
  }

  /** Relaunch every instance, in parallel. */
  async restartAll(): Promise<void> {
    this.assertOpen('restart all');
    await Promise.all([...this.supervisors.values()].map((s) => s.restart()));
  }

  /**
   * Run SQL on a registration's osqueryd. Waits (within `timeoutMs`) for the
   * instance to be running, so a query right after add() or a restart works.
   */
  async query(id: RegistrationId, sql: string, timeoutMs = 30_000): Promise<Row[]> {
    const sup = this.supervisor(id);
    const deadline = Date.now() + timeoutMs;
    const inst = await pollUntil(
      `registration ${id} to be running`,
      () => (sup.instance?.healthy || sup.instance?.state === 'unhealthy' ? sup.instance : undefined),
      {
        timeoutMs,
        intervalMs: 25,
      },
    ).catch((err: unknown) => {
      throw new LauncherError('E_TIMEOUT', `query on ${id}: instance not running within ${timeoutMs} ms (state ${sup.status().state})`, {
        cause: err,
      });
    });
    return inst.query(sql, Math.max(1, deadline - Date.now()));
  }

  /**
   * Stop a registration's instance and keep it, disabled, across restarts (the
   * device server answered disable_device). Its status shows `disabled` and the reason.
   */
  async disable(id: RegistrationId, reason: string): Promise<void> {
    validateRegistrationId(id);
    if (!this.registrations.setDisabled(id, reason)) throw new LauncherError('E_NOT_FOUND', `registration ${id} not found`);
    const sup = this.supervisors.get(id);
    this.supervisors.delete(id);
    await sup?.stop();
    await this.registrations.written();
    this.log.warn({ registration_id: id, reason }, 'registration disabled');
  }

  /** Every registration's status, in insertion order (disabled ones included). */
  status(options: StatusOptions = {}): RegistrationStatus[] {
    const out = [...this.supervisors.values()].map((s) => s.status(options));
    for (const reg of this.registrations.list()) {
      if (reg.disabledReason && !this.supervisors.has(reg.id))
        out.push({ ...idleStatus(reg), state: 'disabled', last_error: reg.disabledReason });
    }
    return out;
  }

  statusOf(id: RegistrationId, options: StatusOptions = {}): RegistrationStatus {
    validateRegistrationId(id);
    const sup = this.supervisors.get(id);
    if (sup) return sup.status(options);
    const reg = this.registrations.get(id);
    if (!reg) throw new LauncherError('E_NOT_FOUND', `registration ${id} not found`);
    return reg.disabledReason ? { ...idleStatus(reg), state: 'disabled', last_error: reg.disabledReason } : idleStatus(reg);
  }

  /** Every instance is running (an empty runner is healthy). */
  healthy(): boolean {
    return [...this.supervisors.values()].every((s) => s.status().healthy);
  }

  /** The current run's output, or undefined before the first run. */
  output(id: RegistrationId): OutputRing | undefined {
    return this.supervisor(id).instance?.output;
  }

  /** Runs of a registration, newest first. */
  history(id: RegistrationId, limit = 20): RunRecord[] {
    return this.runs.list(validateRegistrationId(id), limit);
  }

  registrationsList(): Registration[] {
    return this.registrations.list();
  }

  /** Resolve once `id` is running and healthy; E_TIMEOUT otherwise. */
  async waitHealthy(id: RegistrationId, timeoutMs: number): Promise<RegistrationStatus> {
    const sup = this.supervisor(id);
    return pollUntil(`registration ${id} to be healthy`, () => (sup.status().healthy ? sup.status() : undefined), {
      timeoutMs,
      intervalMs: 20,
    });
  }

  private supervisor(id: RegistrationId): RegistrationSupervisor {
    validateRegistrationId(id);
    const sup = this.supervisors.get(id);
    if (!sup)
      throw new LauncherError(
        'E_NOT_FOUND',
        `registration ${id} is not supervised${this.state === 'running' ? '' : ` (runner ${this.state})`}`,
      );
    return sup;
  }

  private assertOpen(what: string): void {
    if (this.state === 'stopping' || this.state === 'stopped')
      throw new LauncherError('E_SHUTDOWN', `cannot ${what}: runner is ${this.state}`);
  }

  /** The binary `reg`'s next run starts; a failing chooser falls back to the configured one, loudly. */
  private binaryFor(reg: Registration): string {
    try {
      return this.o.osquerydFor?.(reg) ?? this.o.osquerydPath;
    } catch (err) {
      this.log.error({ registration_id: reg.id, err: errorMessage(err) }, 'choosing the osqueryd binary failed; using the configured one');
      return this.o.osquerydPath;
    }
  }

  private makeInstance(reg: Registration): OsqueryInstance {
    const o = this.o;
    const runId = ulid();
    const env = o.instanceEnv?.(reg, runId);
    return new OsqueryInstance({
      runId,
      root: this.root,
      socketDir: this.socketDir!,
      registration: reg,
      osquerydPath: this.binaryFor(reg),
      extensionFactory: o.extensionFactory,
      history: this.runs,
      logger: this.baseLog,
      // Absent settings stay undefined: the instance applies its own defaults.
      limits: this.limits,
      timings: o.timings,
      flagTimings: o.flagTimings,
      outputCapacity: o.outputCapacity,
      tlsServerCerts: o.tlsServerCerts,
      env,
      isolation: resolveIsolation(reg.isolation, reg.id === o.vendorId),
      isolationHost: o.isolationHost,
    });
  }

  private startSupervisor(reg: Registration): void {
    const sup = new RegistrationSupervisor({
      registration: reg,
      makeInstance: (r) => this.makeInstance(r),
      logger: componentLogger(this.baseLog, 'supervisor', { registration_id: reg.id }),
      backoff: this.o.backoff,
    });
    this.supervisors.set(reg.id, sup);
    sup.start();
  }

  private shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      const sups = [...this.supervisors.values()];
      await Promise.all(
        sups.map((s) =>
          s.stop().catch((err: unknown) => this.log.warn({ registration_id: s.id, err: errorMessage(err) }, 'supervisor stop failed')),
        ),
      );
      this.supervisors.clear();
      await clearSupervisorGroups(this.cgroupDirs, this.log);
      this.lock?.release();
      if (this.ownsDb) this.db.close();
      this.state = 'stopped';
      this.log.info('runner stopped');
    })();
    return this.stopping;
  }
}
