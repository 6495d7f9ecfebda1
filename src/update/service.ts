/**
 * The osqueryd update service (issue 17, adr/0018): checks the TUF
 * repository, installs verified versions side by side, and rolls a new
 * version out across the instances one at a time — a canary first, watched
 * for a soak period, then the others, the vendor last — rolling back
 * automatically when an instance on the new version does not stay healthy.
 *
 * It knows the instances only through `Fleet` (the app adapts the Runner),
 * and the Runner knows it only through `binaryFor` (RunnerOptions.osquerydFor):
 * the binary of a registration's next run is a plain input of that run.
 * Moving a registration = record its new version, then restart it.
 */
import { LauncherError, errorMessage } from '../errors.js';
import { componentLogger, silentLogger, type Logger } from '../log/logger.js';
import type { SqliteDatabase } from '../store/database.js';
import { binaryPath, clearStaging, installArchive, installedVersions, isInstalled, makeStagingDir, removeVersion } from './install.js';
import { platformName, type Channel } from './layout.js';
import { UpdateRepository } from './repository.js';
import { UpdateStore, type Rollout, type UpdateEvent, type UpdateState } from './store.js';
import { compareVersions, parseVersion } from './version.js';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import type { TargetFile } from 'tuf-js';

export interface FleetStatus {
  runId: string | null;
  healthy: boolean;
  /** The current run ended (exited, failed, in backoff, stopped). */
  ended: boolean;
  /** Health checks are failing on the current run. */
  unhealthy: boolean;
  crashLoop: boolean;
  /** Restarts asked for (an operator's or tenant's `ctl restart`, …): a run they end is no failure of the version. */
  requestedRestarts: number;
  /** What osqueryd reported (osquery_info.version), once connected. */
  version: string | null;
  lastError: string | null;
}

/** What the update service needs from the supervisor. */
export interface Fleet {
  /** Supervised (not disabled) registrations, in registration order. */
  ids(): string[];
  status(id: string): FleetStatus | undefined;
  /** Restart one registration's osqueryd (its next run asks `binaryFor` again). */
  restart(id: string): Promise<void>;
  /**
   * Ask its osqueryd, through its manager socket, for `osquery_info.version` (within `timeoutMs`): the last word
   * of a soak. Health checks alone can look fine while one is still waiting on an osqueryd that stopped answering.
   */
  probe(id: string, timeoutMs: number): Promise<string | null>;
  /** The supervisor is shutting down: whatever fails now is no verdict on a version. */
  stopping(): boolean;
}

export interface UpdateSettings {
  metadataUrl: string;
  targetsUrl: string;
  trustedRootPath: string;
  channel: Channel;
  checkIntervalMs: number;
  /** How long the canary must stay healthy on the new version. */
  soakMs: number;
  /** How long each later instance must stay healthy before the next one moves. */
  stepMs: number;
  /** An instance that is not healthy this long after its restart fails. */
  healthyWithinMs: number;
  keepVersions: number;
  canary?: string;
  fetchTimeoutMs: number;
  maxTargetBytes: number;
}

export interface UpdateServiceOptions {
  root: string;
  db: SqliteDatabase;
  /** Absent: no update section; the configured binary runs, pins hold only installed versions. */
  settings?: UpdateSettings;
  vendorId: string;
  /** `osqueryd_version` of config registrations. */
  configPins?: Record<string, string>;
  fleet: Fleet;
  platform?: string;
  /** Poll period of the soak watch. */
  watchIntervalMs?: number;
  /** Bound on the query that ends a soak (Fleet.probe). Default 15 s. */
  probeTimeoutMs?: number;
  logger?: Logger;
  /** Each event, for status logs to the backend (the app chooses whose buffers). */
  notify?: (event: UpdateEvent, severity: 'info' | 'warn' | 'error') => void;
}

export interface InstanceUpdateStatus {
  registrationId: string;
  /** What its osqueryd reports now. */
  runningVersion: string | null;
  /** The installed version it is assigned; null: the configured osqueryd_path. */
  assignedVersion: string | null;
  previousVersion: string | null;
  pinnedVersion: string | null;
  pinSource: 'config' | 'api' | null;
  /** The version a running rollout will move it to. */
  pendingVersion: string | null;
}

export interface UpdateStatus {
  enabled: boolean;
  channel: string | null;
  metadataUrl: string | null;
  lastCheck: UpdateState['lastCheck'];
  rollout: Rollout | null;
  instances: InstanceUpdateStatus[];
  installedVersions: string[];
  badVersions: Array<{ version: string; reason: string }>;
}

const now = (): string => new Date().toISOString();

export class UpdateService {
  private readonly o: UpdateServiceOptions;
  private readonly log: Logger;
  private readonly store: UpdateStore;
  private readonly repo: UpdateRepository | undefined;
  private readonly platform: string;
  private readonly stopCtl = new AbortController();
  private chain: Promise<unknown> = Promise.resolve();
  private rolloutTask: Promise<void> | undefined;
  private loopTask: Promise<void> | undefined;

  constructor(options: UpdateServiceOptions) {
    this.o = options;
    this.log = componentLogger(options.logger ?? silentLogger(), 'update');
    this.store = new UpdateStore(options.db);
    this.platform = options.platform ?? platformName();
    const s = options.settings;
    if (s)
      this.repo = new UpdateRepository({
        metadataUrl: s.metadataUrl,
        targetsUrl: s.targetsUrl,
        trustedRootPath: s.trustedRootPath,
        metadataDir: join(options.root, 'update', 'tuf'),
        fetchTimeoutMs: s.fetchTimeoutMs,
        maxTargetBytes: s.maxTargetBytes,
        platform: this.platform,
      });
    try {
      clearStaging(options.root); // debris of an interrupted download or unpack
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'could not clear the update staging directory');
    }
    this.applyConfigPins(options.configPins ?? {});
  }

  private get state(): UpdateState {
    return this.store.state;
  }

  /** Config pins replace the previous config pins; API pins stay. */
  private applyConfigPins(pins: Record<string, string>): void {
    for (const [id, p] of Object.entries(this.state.pins)) if (p.source === 'config' && pins[id] === undefined) delete this.state.pins[id];
    for (const [id, v] of Object.entries(pins)) {
      const existing = this.state.pins[id];
      if (existing?.source === 'api') continue;
      if (existing?.version !== v)
        this.state.pins[id] = { version: parseVersion(v, `registrations ${id} osqueryd_version`), source: 'config', at: now() };
    }
    void this.store.save();
  }

  /** The binary of `id`'s next run: its pinned version, else its assigned version, when installed; else undefined (the configured one). */
  binaryFor(id: string): string | undefined {
    const pin = this.state.pins[id];
    if (pin && isInstalled(this.o.root, pin.version)) return binaryPath(this.o.root, pin.version);
    const a = this.state.assignments[id];
    if (a?.version && isInstalled(this.o.root, a.version)) return binaryPath(this.o.root, a.version);
    return undefined;
  }

  /** The version `id` runs by assignment (null: the configured binary). */
  private effectiveVersion(id: string): string | null {
    const pin = this.state.pins[id];
    if (pin && isInstalled(this.o.root, pin.version)) return pin.version;
    const a = this.state.assignments[id];
    return a?.version && isInstalled(this.o.root, a.version) ? a.version : null;
  }

  /** Resume a rollout left running by a previous supervisor, then check every interval. */
  start(): void {
    if (this.loopTask) return;
    if (this.state.rollout?.state === 'running') {
      this.log.warn({ version: this.state.rollout.version, current: this.state.rollout.current }, 'resuming the rollout in progress');
      this.event('resumed', this.state.rollout.version, this.state.rollout.current, 'rollout resumed after a supervisor restart', 'warn');
      this.launchRollout();
    }
    const s = this.o.settings;
    if (!s) return;
    this.loopTask = (async () => {
      while (!this.stopCtl.signal.aborted) {
        await this.check().catch((err: unknown) => this.log.debug({ err: errorMessage(err) }, 'update check ended with an error'));
        await sleep(s.checkIntervalMs, this.stopCtl.signal);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopCtl.abort();
    await this.loopTask;
    await this.rolloutTask;
    await this.chain.catch(() => undefined);
    await this.store.save();
  }

  /** Serialise checks and pin changes. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private event(
    event: string,
    version: string | null,
    registrationId: string | null,
    detail: string,
    severity: 'info' | 'warn' | 'error' = 'info',
  ): void {
    const e: UpdateEvent = { at: now(), version, registrationId, event, detail };
    void this.store.record(e);
    this.log[severity]({ event, version, registration_id: registrationId ?? undefined }, `osqueryd update: ${detail}`);
    try {
      this.o.notify?.(e, severity);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'update status log could not be buffered');
    }
  }

  /** One check of the repository (also `ctl update check`). E_UPDATE without an update section. */
  check(): Promise<UpdateStatus> {
    return this.serial(async () => {
      const s = this.o.settings;
      const repo = this.repo;
      if (!s || !repo) throw new LauncherError('E_UPDATE', 'no update section in the config: osqueryd updates are off');
      if (this.state.rollout?.state === 'running') return this.status();
      const wanted = [...new Set(Object.values(this.state.pins).map((p) => p.version))].filter((v) => !isInstalled(this.o.root, v));
      try {
        const { latest, archives } = await repo.refresh(s.channel, wanted);
        for (const [v, t] of archives) await this.install(v, t);
        await this.applyPins();
        this.state.lastCheck = { at: now(), result: 'ok', error: null, available: latest?.version ?? null };
        if (latest) await this.consider(latest.version, latest.target);
      } catch (err) {
        const e = err instanceof LauncherError ? err : new LauncherError('E_UPDATE', errorMessage(err), { cause: err });
        const result = e.code === 'E_UNAVAILABLE' ? 'unreachable' : e.code === 'E_UPDATE' ? 'refused' : 'failed';
        this.state.lastCheck = { at: now(), result, error: e.message, available: this.state.lastCheck?.available ?? null };
        if (result === 'unreachable') this.log.warn({ err: e.message }, 'update repository unreachable; nothing changes');
        else this.event('refused', null, null, e.message, 'error');
      }
      void this.store.save();
      return this.status();
    });
  }

  private async install(version: string, target: TargetFile): Promise<void> {
    if (isInstalled(this.o.root, version)) return;
    const dir = makeStagingDir(this.o.root, `download-${version}`);
    try {
      const file = join(dir, 'archive.tar.gz');
      await this.repo!.download(target, file);
      await installArchive(this.o.root, version, file, Math.max(this.o.settings!.maxTargetBytes * 4, 64 * 1024 * 1024));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    this.state.versions[version] = {
      ...this.state.versions[version],
      state: this.state.versions[version]?.state ?? 'installed',
      at: now(),
    };
    this.event(
      'installed',
      version,
      null,
      `installed osqueryd ${version} (verified: ${Object.keys(target.hashes).join(', ')}, ${target.length} bytes)`,
    );
    this.prune();
  }

  /** Pinned registrations whose pinned version is installed but not what they run: move them now (no soak: an operator asked). */
  private async applyPins(): Promise<void> {
    for (const [id, pin] of Object.entries(this.state.pins)) {
      if (!this.o.fleet.ids().includes(id) || !isInstalled(this.o.root, pin.version)) continue;
      const a = this.state.assignments[id];
      if (a?.version === pin.version) continue;
      this.state.assignments[id] = { version: pin.version, previous: a?.version ?? null, since: now() };
      void this.store.save();
      this.event('pinned', pin.version, id, `${id} pinned to ${pin.version} (${pin.source}): restarting it on that version`);
      await this.o.fleet
        .restart(id)
        .catch((err: unknown) => this.log.warn({ registration_id: id, err: errorMessage(err) }, 'restart failed'));
    }
  }

  /** A version the channel points at: refuse, ignore or roll it out. */
  private async consider(version: string, target: TargetFile): Promise<void> {
    const bad = this.state.versions[version];
    if (bad?.state === 'bad') {
      this.log.info({ version, reason: bad.reason }, 'channel points at a version marked bad on this host; waiting for a newer one');
      return;
    }
    const floor = this.floorVersion();
    if (floor && compareVersions(version, floor) < 0)
      throw new LauncherError(
        'E_UPDATE',
        `channel ${this.o.settings!.channel} points at ${version}, older than ${floor} (a rollback attempt); refused`,
      );
    const eligible = this.eligible();
    const behind = eligible.filter((id) => this.effectiveVersion(id) !== version);
    if (behind.length === 0) return;
    await this.install(version, target);
    this.beginRollout(version, eligible, behind);
  }

  /** The lowest version the channel may point at: the highest ever accepted, or the highest an instance reports. */
  private floorVersion(): string | null {
    let floor = this.state.highest;
    for (const id of this.o.fleet.ids()) {
      const v = this.o.fleet.status(id)?.version;
      if (!v || parseSafe(v) === undefined) continue;
      if (!floor || compareVersions(v, floor) > 0) floor = v;
    }
    return floor;
  }

  private eligible(): string[] {
    return this.o.fleet.ids().filter((id) => !this.state.pins[id]);
  }

  /** Canary first (config, else the first tenant, the vendor only when alone), then tenants in order, the vendor last. */
  private beginRollout(version: string, eligible: string[], behind: string[]): void {
    const vendor = this.o.vendorId;
    const configured = this.o.settings?.canary;
    const tenants = eligible.filter((id) => id !== vendor);
    const canary =
      configured && eligible.includes(configured) ? configured : (tenants.find((id) => behind.includes(id)) ?? tenants[0] ?? vendor);
    const rest = tenants.filter((id) => id !== canary);
    const order = [canary, ...rest, ...(eligible.includes(vendor) && canary !== vendor ? [vendor] : [])];
    const r: Rollout = {
      version,
      state: 'running',
      canary,
      order,
      done: order.filter((id) => !behind.includes(id)),
      current: null,
      currentSince: null,
      startedAt: now(),
      updatedAt: now(),
      detail: null,
    };
    this.state.rollout = r;
    void this.store.save();
    this.event(
      'rollout',
      version,
      null,
      `rolling out osqueryd ${version}: canary ${canary}, then ${order.slice(1).join(', ') || 'nothing else'}`,
    );
    this.launchRollout();
  }

  private launchRollout(): void {
    this.rolloutTask ??= this.runRollout()
      .catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'rollout loop failed'))
      .finally(() => {
        this.rolloutTask = undefined;
      });
  }

  private async runRollout(): Promise<void> {
    const r = this.state.rollout;
    if (!r) return;
    const s = this.o.settings;
    while (r.state === 'running' && !this.stopCtl.signal.aborted) {
      const id = r.current ?? r.order.find((x) => !r.done.includes(x));
      if (id === undefined) {
        r.state = 'done';
        r.updatedAt = now();
        if (!this.state.highest || compareVersions(r.version, this.state.highest) > 0) this.state.highest = r.version;
        void this.store.save();
        this.event('done', r.version, null, `osqueryd ${r.version} rolled out to ${r.order.join(', ')}`);
        this.prune();
        return;
      }
      if (!this.o.fleet.ids().includes(id) || this.state.pins[id]) {
        r.done.push(id); // removed or pinned meanwhile: left alone
        r.current = null;
        continue;
      }
      if (r.current !== id) {
        const a = this.state.assignments[id];
        const from = this.effectiveVersion(id);
        this.state.assignments[id] = { version: r.version, previous: from, since: now() };
        r.current = id;
        r.currentSince = now();
        r.updatedAt = now();
        void this.store.save();
        this.event('moving', r.version, id, `${id}: restarting on osqueryd ${r.version} (was ${a?.version ?? 'the configured osqueryd'})`);
        await this.o.fleet
          .restart(id)
          .catch((err: unknown) => this.log.warn({ registration_id: id, err: errorMessage(err) }, 'restart failed'));
      } else {
        r.currentSince = now(); // resumed: the soak starts over
      }
      const soak = id === r.canary ? (s?.soakMs ?? 600_000) : (s?.stepMs ?? 60_000);
      const verdict = await this.watch(id, r.version, soak);
      if (verdict === 'interrupted') return;
      if (verdict === 'ok') {
        r.done.push(id);
        r.current = null;
        r.currentSince = null;
        r.updatedAt = now();
        void this.store.save();
        this.event('moved', r.version, id, `${id} healthy on osqueryd ${r.version}${id === r.canary ? ' through the soak period' : ''}`);
        continue;
      }
      await this.rollBack(r, id, verdict);
      return;
    }
  }

  /** Watch `id` on `version` for `soakMs` once healthy: 'ok', 'interrupted', or why it failed. */
  private async watch(id: string, version: string, soakMs: number): Promise<string> {
    const verdict = await this.observe(id, version, soakMs);
    // A failure seen while the supervisor shuts down is the shutdown's doing: the rollout resumes at the next start.
    if (verdict !== 'ok' && (this.o.fleet.stopping() || this.stopCtl.signal.aborted)) return 'interrupted';
    return verdict;
  }

  private async observe(id: string, version: string, soakMs: number): Promise<string> {
    const s = this.o.settings;
    const start = Date.now();
    let runId: string | null | undefined;
    let healthySince: number | undefined;
    let healthyBy = start + (s?.healthyWithinMs ?? 120_000);
    let requested = this.o.fleet.status(id)?.requestedRestarts ?? 0;
    const interval = this.o.watchIntervalMs ?? 250;
    for (;;) {
      if (this.stopCtl.signal.aborted) return 'interrupted';
      const st = this.o.fleet.status(id);
      if (!st) return 'ok'; // removed meanwhile
      if (runId === undefined && st.runId) runId = st.runId;
      if (runId && st.runId !== runId && st.requestedRestarts > requested) {
        // Restarted on request (a tenant's own `ctl restart`, say), not by a failure: the soak starts over on the new
        // run, so no tenant can get a version marked bad for the whole host by restarting its instance.
        this.log.info(
          { registration_id: id, version, from_run: runId, to_run: st.runId },
          'restarted on request during its soak; the soak starts over',
        );
        requested = st.requestedRestarts;
        runId = st.runId ?? undefined;
        healthySince = undefined;
        healthyBy = Date.now() + (s?.healthyWithinMs ?? 120_000);
        await sleep(interval, this.stopCtl.signal);
        continue;
      }
      if (runId && st.runId !== runId) return `its run ${runId} ended (${st.lastError ?? 'no reason recorded'})`;
      if (st.crashLoop) return `it is crash-looping (${st.lastError ?? 'no reason recorded'})`;
      if (st.ended) return `its run ended (${st.lastError ?? 'no reason recorded'})`;
      if (st.unhealthy) return `its health checks fail (${st.lastError ?? 'no reason recorded'})`;
      if (st.healthy) {
        if (st.version && st.version !== version) return `it reports osqueryd ${st.version}, not ${version}`;
        healthySince ??= Date.now();
        if (Date.now() - healthySince >= soakMs) {
          let answered: string | null;
          try {
            answered = await this.o.fleet.probe(id, this.o.probeTimeoutMs ?? 15_000);
          } catch (err) {
            if (this.stopCtl.signal.aborted) return 'interrupted';
            return `it does not answer queries at the end of its soak (${errorMessage(err)})`;
          }
          if (answered !== null && answered !== version) return `it reports osqueryd ${answered}, not ${version}`;
          const after = this.o.fleet.status(id);
          if (after && after.runId !== runId) return `its run ${runId} ended (${after.lastError ?? 'no reason recorded'})`;
          return 'ok';
        }
      } else if (healthySince === undefined && Date.now() > healthyBy) {
        return `it was not healthy within ${Math.round((s?.healthyWithinMs ?? 120_000) / 1000)} s`;
      }
      await sleep(interval, this.stopCtl.signal);
    }
  }

  /** Mark the version bad, move every registration the rollout moved back to what it ran, stop the rollout. */
  private async rollBack(r: Rollout, failed: string, reason: string): Promise<void> {
    const detail = `${failed} failed on osqueryd ${r.version}: ${reason}; rolled back, ${r.version} marked bad on this host`;
    this.state.versions[r.version] = { state: 'bad', reason: `${failed}: ${reason}`, at: now() };
    r.state = 'rolled_back';
    r.detail = detail;
    r.updatedAt = now();
    const moved = [failed, ...r.done.filter((id) => this.state.assignments[id]?.version === r.version).reverse()];
    for (const id of moved) {
      const a = this.state.assignments[id];
      if (!a || a.version !== r.version) continue;
      this.state.assignments[id] = { version: a.previous, previous: r.version, since: now() };
    }
    r.current = null;
    void this.store.save();
    this.event('rolled_back', r.version, failed, detail, 'error');
    for (const id of moved) {
      if (this.state.pins[id] || !this.o.fleet.ids().includes(id)) continue;
      await this.o.fleet
        .restart(id)
        .catch((err: unknown) => this.log.warn({ registration_id: id, err: errorMessage(err) }, 'restart failed'));
    }
  }

  /** Keep the newest `keepVersions` installed versions, and every version assigned, previous or pinned. */
  private prune(): void {
    const keep = this.o.settings?.keepVersions ?? 3;
    const needed = new Set<string>();
    for (const a of Object.values(this.state.assignments)) {
      if (a.version) needed.add(a.version);
      if (a.previous) needed.add(a.previous);
    }
    for (const p of Object.values(this.state.pins)) needed.add(p.version);
    if (this.state.rollout?.state === 'running') needed.add(this.state.rollout.version);
    const installed = installedVersions(this.o.root).sort(compareVersions).reverse();
    for (const v of installed.slice(keep)) {
      if (needed.has(v)) continue;
      try {
        removeVersion(this.o.root, v);
        this.log.info({ version: v }, 'removed an old osqueryd version');
      } catch (err) {
        this.log.warn({ version: v, err: errorMessage(err) }, 'could not remove an old osqueryd version');
      }
    }
  }

  /** Pin `id` to `version` (default: what it runs now); it is left out of rollouts. E_NOT_FOUND, E_INVALID_ARGUMENT. */
  pin(id: string, version?: string): Promise<UpdateStatus> {
    return this.serial(async () => {
      if (!this.o.fleet.ids().includes(id)) throw new LauncherError('E_NOT_FOUND', `registration ${id} not found`);
      const v =
        version !== undefined && version !== ''
          ? parseVersion(version, 'version')
          : (this.effectiveVersion(id) ?? parseSafe(this.o.fleet.status(id)?.version ?? ''));
      if (!v) throw new LauncherError('E_INVALID_ARGUMENT', `registration ${id} reports no osqueryd version yet: give the version to pin`);
      this.state.pins[id] = { version: v, source: 'api', at: now() };
      void this.store.save();
      this.event(
        'pin',
        v,
        id,
        `${id} pinned to osqueryd ${v}${isInstalled(this.o.root, v) ? '' : ' (not installed: fetched at the next check if the repository has it)'}`,
      );
      await this.applyPins();
      return this.status();
    });
  }

  /** Remove `id`'s API pin (a config pin comes back at the next start); it joins the next rollout. */
  unpin(id: string): Promise<UpdateStatus> {
    return this.serial(async () => {
      if (!this.o.fleet.ids().includes(id) && !this.state.pins[id]) throw new LauncherError('E_NOT_FOUND', `registration ${id} not found`);
      const pin = this.state.pins[id];
      if (!pin) throw new LauncherError('E_NOT_FOUND', `registration ${id} is not pinned`);
      delete this.state.pins[id];
      void this.store.save();
      this.event('unpin', pin.version, id, `${id} unpinned${pin.source === 'config' ? ' (its config pin returns at the next start)' : ''}`);
      return this.status();
    });
  }

  /** Forget a removed registration. */
  forget(id: string): void {
    delete this.state.assignments[id];
    delete this.state.pins[id];
    void this.store.save();
  }

  instanceStatus(id: string): InstanceUpdateStatus {
    const a = this.state.assignments[id];
    const pin = this.state.pins[id];
    const r = this.state.rollout;
    const pending = r?.state === 'running' && r.order.includes(id) && !r.done.includes(id) && !pin ? r.version : null;
    return {
      registrationId: id,
      runningVersion: this.o.fleet.status(id)?.version ?? null,
      assignedVersion: this.effectiveVersion(id),
      previousVersion: a?.previous ?? null,
      pinnedVersion: pin?.version ?? null,
      pinSource: pin?.source ?? null,
      pendingVersion: pending,
    };
  }

  status(ids?: readonly string[]): UpdateStatus {
    const s = this.o.settings;
    const list = ids ?? this.o.fleet.ids();
    return {
      enabled: s !== undefined,
      channel: s?.channel ?? null,
      metadataUrl: s?.metadataUrl ?? null,
      lastCheck: this.state.lastCheck,
      rollout: this.state.rollout,
      instances: list.map((id) => this.instanceStatus(id)),
      installedVersions: installedVersions(this.o.root).sort(compareVersions),
      badVersions: Object.entries(this.state.versions)
        .filter(([, v]) => v.state === 'bad')
        .map(([version, v]) => ({ version, reason: v.reason ?? '' })),
    };
  }

  events(limit?: number): UpdateEvent[] {
    return this.store.events(limit);
  }
}

function parseSafe(v: string): string | undefined {
  try {
    return parseVersion(v);
  } catch {
    return undefined;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
