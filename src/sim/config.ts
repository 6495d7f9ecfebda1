/**
 * Config loading (docs/protocol/osquery-extensions.md#config-plugins, docs/protocol/osquery-extensions.md#config-json): genConfig through the
 * active config plugin, every source parsed (`//` and `#` comment lines
 * stripped) and merged, `options` applied to the flags (CLI-only and unknown
 * flags skipped with a warning, `custom_*` kept), string packs resolved with
 * genPack, and the schedule rebuilt. With `--config_refresh` > 0 the config
 * is re-read on that interval, or on `--config_accelerated_refresh` after a
 * failure.
 */
import { createHash } from 'node:crypto';
import { findFlag, type FlagValues } from './flags.js';
import type { FaultController } from './faults.js';
import { glog } from './glog.js';
import { scheduledQueries, type PackValue, type ScheduledQuery } from './packs.js';
import type { Registry } from './registry.js';
import type { SqlEngine } from './sql/engine.js';

export interface Decorators {
  load: string[];
  always: string[];
  interval: Record<string, string[]>;
}

interface ParsedConfig {
  options: Record<string, unknown>;
  schedule: Record<string, unknown>;
  packs: Record<string, unknown>;
  decorators: Decorators;
}

const asObject = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const asStrings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);

/** Remove whole-line `//` and `#` comments, as osqueryd does before parsing. */
export function stripComments(text: string): string {
  return text
    .split('\n')
    .map((line) => (/^\s*(\/\/|#)/.test(line) ? '' : line))
    .join('\n');
}

function optionString(v: unknown): string {
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return JSON.stringify(v);
}

export class ConfigManager {
  private readonly registry: Registry;
  private readonly flags: FlagValues;
  private readonly engine: SqlEngine;
  private readonly faults: FaultController;
  private readonly hostIdentifier: () => string;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  hash = '';
  valid = false;
  queries: ScheduledQuery[] = [];
  decorators: Decorators = { load: [], always: [], interval: {} };

  constructor(registry: Registry, flags: FlagValues, engine: SqlEngine, faults: FaultController, hostIdentifier: () => string) {
    this.registry = registry;
    this.flags = flags;
    this.engine = engine;
    this.faults = faults;
    this.hostIdentifier = hostIdentifier;
  }

  /** Config::load(): true when the config was read (or there was no update). */
  async load(): Promise<boolean> {
    const res = await this.registry.call('config', '', { action: 'genConfig' });
    if (res.status.code !== 0) {
      glog.error('config.cpp', 512, `Error reading config: ${res.status.message}`);
      return false;
    }
    const sources = res.response[0];
    if (!sources) return true;
    let parsed: ParsedConfig;
    try {
      parsed = this.parse(sources);
    } catch (err) {
      glog.error('config.cpp', 530, `Error parsing the config JSON: ${(err as Error).message}`);
      return false;
    }
    this.applyOptions(parsed.options);
    const packs = await this.resolvePacks(parsed.packs);
    this.queries = await scheduledQueries(parsed.schedule, packs, this.flags, this.hostIdentifier(), (sql, pack) =>
      this.discover(sql, pack),
    );
    this.decorators = parsed.decorators;
    const hash = createHash('sha1');
    for (const name of Object.keys(sources).sort()) hash.update(sources[name]!);
    this.hash = hash.digest('hex');
    this.valid = true;
    glog.vlog('config.cpp', 560, `Config loaded: ${this.queries.length} scheduled queries`);
    return true;
  }

  /** Re-read every --config_refresh seconds; --config_accelerated_refresh after a failure. */
  startRefresh(lastOk: boolean): void {
    const refresh = this.flags.num('config_refresh');
    if (this.stopped || refresh <= 0) return;
    const seconds = lastOk ? refresh : this.flags.num('config_accelerated_refresh');
    this.timer = setTimeout(() => {
      if (this.faults.hung) return this.startRefresh(lastOk);
      void this.load()
        .catch((err: unknown) => {
          glog.error('config.cpp', 520, `Error reading config: ${String(err)}`);
          return false;
        })
        .then((ok) => this.startRefresh(ok));
    }, seconds * 1000);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private parse(sources: Record<string, string>): ParsedConfig {
    const out: ParsedConfig = { options: {}, schedule: {}, packs: {}, decorators: { load: [], always: [], interval: {} } };
    for (const name of Object.keys(sources).sort()) {
      const doc = asObject(JSON.parse(stripComments(sources[name]!)));
      Object.assign(out.options, asObject(doc.options));
      Object.assign(out.schedule, asObject(doc.schedule));
      Object.assign(out.packs, asObject(doc.packs));
      const dec = asObject(doc.decorators);
      out.decorators.load.push(...asStrings(dec.load));
      out.decorators.always.push(...asStrings(dec.always));
      for (const [secs, list] of Object.entries(asObject(dec.interval))) {
        if (Number(secs) % 60 !== 0) {
          glog.warning('decorators.cpp', 77, `Invalid decorator interval: ${secs}; must be a multiple of 60`);
          continue;
        }
        (out.decorators.interval[secs] ??= []).push(...asStrings(list));
      }
    }
    return out;
  }

  private applyOptions(options: Record<string, unknown>): void {
    for (const [name, value] of Object.entries(options)) {
      if (name.startsWith('custom_')) {
        this.flags.setCustom(name, optionString(value));
        continue;
      }
      const def = findFlag(name);
      if (!def || def.builtin) {
        glog.warning('options.cpp', 58, `Cannot set unknown or invalid flag: ${name}`);
        continue;
      }
      if (def.cli) {
        glog.warning('options.cpp', 63, `Cannot set CLI-only flag from config: ${name}`);
        continue;
      }
      const res = this.flags.set(name, optionString(value));
      if (!res.ok) glog.warning('options.cpp', 70, `Cannot set flag ${name}: ${res.error}`);
    }
    // A config's `verbose` takes effect at once, as osqueryd's flag does for VLOG.
    glog.verbose = this.flags.bool('verbose');
  }

  private async resolvePacks(packs: Record<string, unknown>): Promise<Record<string, PackValue>> {
    const out: Record<string, PackValue> = {};
    for (const [name, value] of Object.entries(packs)) {
      if (typeof value !== 'string') {
        out[name] = asObject(value);
        continue;
      }
      const res = await this.registry.call('config', '', { action: 'genPack', name, value });
      const text = res.status.code === 0 ? res.response[0]?.[name] : undefined;
      if (text === undefined) {
        glog.warning(
          'packs.cpp',
          98,
          `Error reading the query pack named: ${name}${res.status.code !== 0 ? `: ${res.status.message}` : ''}`,
        );
        continue;
      }
      try {
        out[name] = asObject(JSON.parse(stripComments(text)));
      } catch (err) {
        glog.warning('packs.cpp', 104, `Error parsing the pack JSON: ${name}: ${(err as Error).message}`);
      }
    }
    return out;
  }

  private async discover(sql: string, pack: string): Promise<boolean> {
    const res = await this.engine.query(sql, 'discovery', pack);
    if (!res.ok) glog.warning('packs.cpp', 190, `Discovery query failed (${sql}): ${res.message}`);
    return res.ok && res.rows.length > 0;
  }
}
