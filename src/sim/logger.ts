/**
 * The active logger plugin(s) (`--logger_plugin`, a comma list) and what
 * osqueryd sends them (docs/protocol/osquery-extensions.md#logger-plugins): `{init:"osqueryd"}`,
 * then `{action:"features"}` whose status.code is a bitmask (1 = status
 * logs); status logs as `{status:"true", log:"[...]"}` batches with short
 * keys s/f/i/m/h/c/u about every 3 s; result lines as
 * `{string, category:"event"}` and `{snapshot}`.
 *
 * Status lines are captured from process start and handed over once the
 * loggers are initialised. Core plugins (filesystem) get them as they come.
 */
import type { PluginRequest } from '../osquery/protocol.js';
import type { FaultController } from './faults.js';
import type { FlagValues } from './flags.js';
import { glog, type StatusEntry } from './glog.js';
import { calendarTime, unixSeconds } from './host.js';
import type { CoreLoggerPlugin } from './logger-filesystem.js';
import type { Registry, Resolved } from './registry.js';

export const STATUS_RELAY_MS = 3_000;
const MAX_BUFFERED_STATUS = 10_000;
const FEATURE_STATUS = 1;

interface ActiveLogger {
  target: Resolved;
  features: number;
}

export class LoggerRouter {
  private readonly registry: Registry;
  private readonly flags: FlagValues;
  private readonly hostIdentifier: () => string;
  private readonly faults: FaultController;
  private loggers: ActiveLogger[] | undefined;
  private pending: StatusEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(registry: Registry, flags: FlagValues, hostIdentifier: () => string, faults: FaultController) {
    this.registry = registry;
    this.flags = flags;
    this.hostIdentifier = hostIdentifier;
    this.faults = faults;
  }

  /** Start buffering status lines (call at process start). */
  capture(): void {
    this.unsubscribe ??= glog.subscribe((e) => this.onStatus(e));
  }

  /**
   * initActivePlugin("logger") and initLogger: undefined when every plugin
   * is active, else the name of the first one that does not exist.
   */
  async activate(): Promise<string | undefined> {
    const names = this.flags
      .get('logger_plugin')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const targets: Resolved[] = [];
    for (const name of names) {
      const target = this.registry.resolveExact('logger', name);
      if (!target) return name;
      targets.push(target);
    }
    this.registry.setActive('logger', names.join(','));
    const loggers: ActiveLogger[] = [];
    for (const target of targets) {
      await this.registry.callResolved('logger', target, { init: 'osqueryd' });
      const features = await this.registry.callResolved('logger', target, { action: 'features' });
      loggers.push({ target, features: features.status.code });
    }
    this.loggers = loggers;
    const buffered = this.pending;
    this.pending = [];
    for (const e of buffered) this.onStatus(e);
    // initLogger relays what was buffered before the plugins existed at once; later lines every 3 s.
    await this.relay().catch(() => undefined);
    this.scheduleRelay();
    return undefined;
  }

  /** One scheduled-query result line: a differential (`string`) or a snapshot. */
  async logResult(json: string, kind: 'string' | 'snapshot'): Promise<void> {
    const request: PluginRequest = kind === 'string' ? { string: json, category: 'event' } : { snapshot: json };
    for (const l of this.loggers ?? []) await this.registry.callResolved('logger', l.target, request);
  }

  get active(): boolean {
    return this.loggers !== undefined;
  }

  /** Stop relaying; the last batch is sent first. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    if (!this.faults.hung) await this.relay();
  }

  private onStatus(e: StatusEntry): void {
    if (e.severity < this.flags.num('logger_min_status')) return;
    if (!this.loggers) {
      if (this.pending.length < MAX_BUFFERED_STATUS) this.pending.push(e);
      return;
    }
    let forExtensions = false;
    for (const l of this.loggers) {
      if ((l.features & FEATURE_STATUS) === 0) continue;
      if (l.target.kind === 'core' && 'logStatus' in l.target.plugin) (l.target.plugin as CoreLoggerPlugin).logStatus([e]);
      else forExtensions = true;
    }
    if (forExtensions && this.pending.length < MAX_BUFFERED_STATUS) this.pending.push(e);
  }

  private scheduleRelay(): void {
    this.timer = setTimeout(() => {
      void this.relay()
        .catch(() => undefined) // a failed relay is dropped, as osqueryd drops status logs it cannot send
        .finally(() => {
          if (this.timer) this.scheduleRelay();
        });
    }, STATUS_RELAY_MS);
  }

  private async relay(): Promise<void> {
    if (this.faults.hung || this.pending.length === 0 || !this.loggers) return;
    const batch = this.pending;
    this.pending = [];
    const host = this.hostIdentifier();
    const log = JSON.stringify(
      batch.map((e) => ({ s: e.severity, f: e.file, i: e.line, m: e.message, h: host, c: calendarTime(e.time), u: unixSeconds(e.time) })),
    );
    for (const l of this.loggers) {
      if ((l.features & FEATURE_STATUS) === 0 || l.target.kind === 'core') continue;
      await this.registry.callResolved('logger', l.target, { status: 'true', log });
    }
  }
}
