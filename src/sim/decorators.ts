/**
 * Config `decorators` (docs/protocol/osquery-extensions.md#decorators): `load` queries run when a config is
 * loaded, `interval` ones every N seconds, `always` ones before each result
 * log. Each query's first row's columns become `decorations`.
 */
import type { ConfigManager } from './config.js';
import type { FlagValues } from './flags.js';
import type { SqlEngine } from './sql/engine.js';

export class Decorations {
  private readonly engine: SqlEngine;
  private readonly config: ConfigManager;
  private readonly flags: FlagValues;
  private loadHash: string | undefined;
  private loaded: Record<string, string> = {};
  private readonly intervals = new Map<string, { at: number; values: Record<string, string> }>();

  constructor(engine: SqlEngine, config: ConfigManager, flags: FlagValues) {
    this.engine = engine;
    this.config = config;
    this.flags = flags;
  }

  /** The decorations for a result log written now. */
  async current(): Promise<Record<string, string>> {
    if (this.flags.bool('disable_decorators')) return {};
    const d = this.config.decorators;
    if (this.loadHash !== this.config.hash) {
      this.loadHash = this.config.hash;
      this.loaded = await this.run(d.load);
      this.intervals.clear();
    }
    const now = Date.now();
    const out: Record<string, string> = { ...this.loaded };
    for (const [secs, queries] of Object.entries(d.interval)) {
      let cached = this.intervals.get(secs);
      if (!cached || now - cached.at >= Number(secs) * 1000) {
        cached = { at: now, values: await this.run(queries) };
        this.intervals.set(secs, cached);
      }
      Object.assign(out, cached.values);
    }
    return Object.assign(out, await this.run(d.always));
  }

  private async run(queries: readonly string[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const sql of queries) {
      const res = await this.engine.query(sql, 'decorator', '');
      if (res.ok && res.rows[0]) Object.assign(out, res.rows[0]);
    }
    return out;
  }
}
