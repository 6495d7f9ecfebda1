/**
 * Query quarantine of one run (issue 16, ADR 0017). Owned by this run's
 * extension, the one place that sees both what osqueryd was given
 * (getQueries, the config) and what it answered (writeResults):
 *
 * - distributed queries handed to osqueryd and not yet answered are *in
 *   flight*; one past `queryTimeoutMs` ends the run (this osqueryd only) and
 *   is a suspect;
 * - when the run ends because osqueryd crashed, was OOM-killed or stopped
 *   answering, the in-flight distributed queries and the scheduled query it
 *   last said it started (the instance reads osqueryd's `Executing scheduled
 *   query <name>: <sql>` line) are suspects;
 * - each suspect's incident goes to the store (src/store/quarantine.ts), which
 *   quarantines it for this registration after `policy.incidents` in the
 *   window;
 * - a quarantined distributed query is answered to the backend with a failed
 *   result and never handed to osqueryd; a quarantined scheduled query is left
 *   out of the config served to osqueryd, with a status log saying so.
 */
import { hostname } from 'node:os';
import type { DistributedQueryResult } from '../../src/device/index.js';
import { LauncherError, errorMessage } from '../../src/errors.js';
import type { Logger } from '../../src/log/logger.js';
import type { LogBuffer } from '../../src/store/log-buffer.js';
import type { QuarantineEntry, QuarantinePolicy, QuarantineStore, SuspectQuery } from '../../src/store/quarantine.js';

export interface QuarantineSettings {
  /** Off: nothing is tracked, filtered or recorded. */
  enabled: boolean;
  policy: QuarantinePolicy;
  /** A distributed query with no result after this long ends the run. */
  queryTimeoutMs: number;
}

/** The end of a run as the instance reports it (src/runtime/instance/extension.ts RunEndReport). */
export interface RunEnd {
  cause: string;
  error?: string;
  endedAt: number;
  lastScheduled?: { text: string; at: number };
}

export interface QueryQuarantineOptions {
  registrationId: string;
  store: QuarantineStore;
  settings: QuarantineSettings;
  buffer: LogBuffer;
  log: Logger;
  /** End this run (its osqueryd is replaced). */
  endRun(reason: Error): void;
  clock?: () => number;
}

interface InFlight {
  sql: string;
  at: number;
}

/** A scheduled query as served to osqueryd: its full name (packs: `pack<d><pack><d><query>`) and SQL. */
interface Served {
  name: string;
  sql: string;
}

/** Run ends whose in-flight queries are suspects. */
const SUSPECT_CAUSES = new Set(['crashed', 'oom_killed', 'unresponsive']);
/**
 * At most this many suspects are recorded per incident (a backend could hand out a huge batch): the store, the
 * run history note and the event loop stay bounded; the rest of the batch is named in the note as a count.
 */
const MAX_SUSPECTS_PER_INCIDENT = 32;
/** The run-history note is clipped to this many characters. */
const MAX_NOTE_CHARS = 2_000;
const short = (s: string, n = 80) => (s.length > n ? `${s.slice(0, n)}…` : s);
const firstLine = (s: string) => s.split('\n', 1)[0] ?? '';
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The text `ctl quarantine release` takes for an entry: a scheduled query's name, else the first 12 hex digits of its SQL hash. */
export function releaseHandle(e: Pick<QuarantineEntry, 'kind' | 'name' | 'sqlHash'>): string {
  return e.kind === 'scheduled' && e.name !== '' ? e.name : e.sqlHash.slice(0, 12);
}

export class QueryQuarantine {
  private readonly o: QueryQuarantineOptions;
  private readonly clock: () => number;
  private readonly inFlight = new Map<string, InFlight>();
  private served: Served[] = [];
  /** Scheduled queries already announced as left out (one status log per query per run). */
  private readonly announced = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** Set once this run's suspects were recorded (a deadline, or the run's end). */
  private recorded: Promise<string | undefined> | undefined;

  constructor(o: QueryQuarantineOptions) {
    this.o = o;
    this.clock = o.clock ?? Date.now;
    if (!o.settings.enabled) return;
    void o.store.purgeExpired(this.clock(), o.settings.policy.windowMs).catch(() => undefined);
    const every = Math.max(50, Math.min(1000, Math.floor(o.settings.queryTimeoutMs / 4)));
    this.timer = setInterval(() => this.checkDeadlines(), every);
    this.timer.unref();
  }

  get enabled(): boolean {
    return this.o.settings.enabled;
  }

  /**
   * Queries from the backend on their way to osqueryd: quarantined ones are
   * taken out (with their failed results, to publish), the rest are in flight.
   */
  handOut(
    queries: Record<string, string>,
    discovery: Record<string, string> | undefined,
  ): {
    queries: Record<string, string>;
    discovery: Record<string, string> | undefined;
    refused: DistributedQueryResult[];
  } {
    if (!this.enabled) return { queries, discovery, refused: [] };
    const now = this.clock();
    const kept: Record<string, string> = {};
    const keptDiscovery: Record<string, string> = {};
    const refused: DistributedQueryResult[] = [];
    for (const [id, sql] of Object.entries(queries)) {
      const entry = this.find('distributed', '', sql);
      if (entry) {
        refused.push({ query_name: id, status: 1, rows: [], stats: null, message: this.refusal(entry) });
        if (refused.length === 1)
          this.o.log.warn(
            { query_id: short(id, 200), sql_hash: entry.sqlHash },
            'distributed query is quarantined; answered as failed, not run',
          );
        continue;
      }
      kept[id] = sql;
      if (discovery && Object.hasOwn(discovery, id)) keptDiscovery[id] = discovery[id]!;
      this.inFlight.set(id, { sql, at: now });
    }
    if (refused.length > 1)
      this.o.log.warn({ refused: refused.length }, 'quarantined distributed queries in this batch answered as failed, not run');
    return { queries: kept, discovery: discovery ? keptDiscovery : undefined, refused };
  }

  /**
   * osqueryd asked for new work, so it has finished the previous batch: queries it never answered were not run
   * (discovery found nothing, or osqueryd dropped the batch) and are no longer in flight (not hangs).
   */
  batchEnded(): void {
    this.inFlight.clear();
  }

  /** osqueryd wrote results for these query ids. */
  answered(ids: Iterable<string>): void {
    for (const id of ids) this.inFlight.delete(id);
  }

  /** In-flight ids (status, tests). */
  inFlightIds(): string[] {
    return [...this.inFlight.keys()];
  }

  /**
   * The config on its way to osqueryd: quarantined scheduled queries (schedule
   * and pack queries) left out, and `schedule_lognames` on so osqueryd names
   * each scheduled query it starts. Text that is not a JSON object passes
   * through unchanged.
   */
  filterConfig(text: string): string {
    if (!this.enabled) return text;
    let config: unknown;
    try {
      config = JSON.parse(text);
    } catch {
      return text;
    }
    if (!isObject(config)) return text;
    const options = config.options ?? {};
    if (!isObject(options)) return text;
    config.options = { ...options, schedule_lognames: true };
    const delimiter = typeof options.pack_delimiter === 'string' ? options.pack_delimiter : '_';
    const served: Served[] = [];
    const keep = (fullName: string, q: unknown): boolean => {
      if (!isObject(q) || typeof q.query !== 'string') return true;
      const entry = this.find('scheduled', fullName, q.query);
      if (!entry) {
        served.push({ name: fullName, sql: q.query });
        return true;
      }
      this.announce(fullName, entry);
      return false;
    };
    // Object.fromEntries makes own keys, so a query named `__proto__` stays a query.
    if (isObject(config.schedule))
      config.schedule = Object.fromEntries(Object.entries(config.schedule).filter(([name, q]) => keep(name, q)));
    if (isObject(config.packs)) {
      const packs: Array<[string, unknown]> = [];
      for (const [pack, value] of Object.entries(config.packs)) {
        if (!isObject(value) || !isObject(value.queries)) {
          packs.push([pack, value]);
          continue;
        }
        const queries = Object.fromEntries(
          Object.entries(value.queries).filter(([name, q]) => keep(`pack${delimiter}${pack}${delimiter}${name}`, q)),
        );
        packs.push([pack, { ...value, queries }]);
      }
      config.packs = Object.fromEntries(packs);
    }
    this.served = served;
    return JSON.stringify(config);
  }

  /**
   * The run is over. When osqueryd crashed, was OOM-killed or stopped
   * answering, record an incident for each suspect. Returns a note naming the
   * suspects, for the run history.
   */
  runEnded(end: RunEnd): Promise<string | undefined> {
    this.stop();
    if (!this.enabled) return Promise.resolve(undefined);
    if (this.recorded) return this.recorded;
    if (!SUSPECT_CAUSES.has(end.cause)) return Promise.resolve(undefined);
    const suspects: SuspectQuery[] = [];
    let newestHandOut = 0;
    for (const [id, f] of this.inFlight) {
      suspects.push({ kind: 'distributed', name: id, sql: f.sql });
      newestHandOut = Math.max(newestHandOut, f.at);
    }
    const scheduled = this.scheduledSuspect(end, newestHandOut);
    if (scheduled) suspects.push(scheduled);
    const cause = `osqueryd ${end.cause.replace('_', '-')}${end.error ? ` (${short(end.error, 200)})` : ''}`;
    this.recorded = this.record(suspects, cause);
    return this.recorded;
  }

  /** Stop the deadline timer. Idempotent. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * The scheduled query osqueryd last said it started, when it may have been
   * the one running at the end: it is a query of the config served in this
   * run, it started no longer than the query deadline before the end, and no
   * distributed query was handed out after it (osqueryd would then have been
   * busy with that one; ADR 0017).
   */
  private scheduledSuspect(end: RunEnd, newestHandOut: number): SuspectQuery | undefined {
    const last = end.lastScheduled;
    if (!last) return undefined;
    if (end.endedAt - last.at > this.o.settings.queryTimeoutMs) return undefined;
    if (newestHandOut > last.at) return undefined;
    const cut = last.text.indexOf('… [');
    const text = cut >= 0 ? last.text.slice(0, cut) : last.text;
    // The longest name whose `<name>: <first line of sql>` the line shows (names may contain ": ").
    const match = this.served
      .filter((q) => {
        const shown = `${q.name}: ${firstLine(q.sql)}`;
        return cut >= 0 ? shown.startsWith(text) : shown === text;
      })
      .sort((a, b) => b.name.length - a.name.length)[0];
    return match ? { kind: 'scheduled', name: match.name, sql: match.sql } : undefined;
  }

  private checkDeadlines(): void {
    if (this.recorded || this.inFlight.size === 0) return;
    const now = this.clock();
    const expired = [...this.inFlight].filter(([, f]) => now - f.at >= this.o.settings.queryTimeoutMs);
    if (expired.length === 0) return;
    this.stop();
    const seconds = Math.round(this.o.settings.queryTimeoutMs / 1000);
    const [firstId, first] = expired[0]!;
    const reason = new LauncherError(
      'E_TIMEOUT',
      `distributed query ${short(firstId, 200)} (${short(first.sql)}) got no result within ${seconds} s (quarantine.query_timeout_seconds): replacing this osqueryd`,
    );
    this.o.log.warn(
      { query_ids: expired.map(([id]) => short(id, 200)), timeout_s: seconds },
      'distributed query past its deadline; ending this run',
    );
    this.recorded = this.record(
      expired.map(([id, f]) => ({ kind: 'distributed', name: id, sql: f.sql })),
      `no result within ${seconds} s`,
    );
    this.o.endRun(reason);
  }

  private async record(all: SuspectQuery[], cause: string): Promise<string | undefined> {
    if (all.length === 0) return undefined;
    const { registrationId, store, settings, log } = this.o;
    const notes: string[] = [];
    // The scheduled suspect (last, when there is one) is always kept; distributed ones up to the cap.
    const scheduled = all.filter((s) => s.kind === 'scheduled');
    const distributed = all.filter((s) => s.kind !== 'scheduled');
    const keep = Math.max(0, MAX_SUSPECTS_PER_INCIDENT - scheduled.length);
    const suspects = [...distributed.slice(0, keep), ...scheduled];
    const skipped = all.length - suspects.length;
    for (const s of suspects) {
      // One write per suspect; let the event loop run between them (health checks, other instances, the API).
      await new Promise((r) => setImmediate(r));
      // Names come from the backend: bounded wherever they are shown (history, logs, status logs).
      const what = s.kind === 'scheduled' ? `scheduled query ${short(s.name, 200)}` : `distributed query ${short(s.name, 200)}`;
      try {
        const outcome = await store.recordIncident(registrationId, s, cause, settings.policy, this.clock());
        if (outcome.quarantined) {
          const e = outcome.quarantined;
          notes.push(`${what} quarantined after ${outcome.incidents} incidents (release: ${releaseHandle(e)})`);
          log.error(
            {
              kind: s.kind,
              query: short(s.name, 200),
              sql_hash: e.sqlHash,
              incidents: outcome.incidents,
              expires_at: new Date(e.expiresAt).toISOString(),
            },
            `${what} quarantined on this registration`,
          );
          this.statusLog(
            2,
            `osquery-launcher: ${what} (${short(s.sql)}) is quarantined on registration ${registrationId}: ${e.reason}; ` +
              `it is not run here until released (launcher ctl quarantine release ${registrationId} ${releaseHandle(e)}) or until ${new Date(e.expiresAt).toISOString()}`,
          );
        } else {
          notes.push(`suspect ${what} (incident ${outcome.incidents} of ${settings.policy.incidents})`);
          log.warn(
            { kind: s.kind, query: short(s.name, 200), incidents: outcome.incidents },
            `${what} was running when this run ended: a suspect`,
          );
        }
      } catch (err) {
        log.error({ err: errorMessage(err), query: short(s.name, 200) }, 'could not record a quarantine incident');
      }
    }
    if (skipped > 0) {
      notes.push(
        `${skipped} more queries of the batch were in flight and not recorded (at most ${MAX_SUSPECTS_PER_INCIDENT} per incident)`,
      );
      log.warn({ skipped, recorded: suspects.length }, 'too many suspects in one incident; only the first were recorded');
    }
    if (notes.length === 0) return undefined;
    const note = `quarantine: ${notes.join('; ')}`;
    return note.length > MAX_NOTE_CHARS ? `${note.slice(0, MAX_NOTE_CHARS)}…` : note;
  }

  private find(kind: 'distributed' | 'scheduled', name: string, sql: string): QuarantineEntry | undefined {
    try {
      return this.o.store.find(this.o.registrationId, kind, name, sql, this.clock());
    } catch (err) {
      // A store that cannot be read must not stop queries or configs: the query runs.
      this.o.log.warn({ err: errorMessage(err) }, 'quarantine lookup failed; not filtering');
      return undefined;
    }
  }

  private refusal(e: QuarantineEntry): string {
    return (
      `quarantined by osquery-launcher on registration ${this.o.registrationId}: ${e.reason}; ` +
      `not run until released (launcher ctl quarantine release ${this.o.registrationId} ${releaseHandle(e)}) or until ${new Date(e.expiresAt).toISOString()}`
    );
  }

  private announce(name: string, e: QuarantineEntry): void {
    const key = `${name}\n${e.sqlHash}`;
    if (this.announced.has(key)) return;
    this.announced.add(key);
    this.o.log.warn({ query: short(name, 200), sql_hash: e.sqlHash }, 'scheduled query is quarantined; left out of the config');
    this.statusLog(
      1,
      `osquery-launcher: scheduled query ${short(name, 200)} is quarantined on registration ${this.o.registrationId} (${e.reason}); ` +
        `left out of the config until released (launcher ctl quarantine release ${this.o.registrationId} ${releaseHandle(e)}) or until ${new Date(e.expiresAt).toISOString()}`,
    );
  }

  /** A status log in osqueryd's short-key shape, buffered for this registration's backend. */
  private statusLog(severity: 1 | 2, message: string): void {
    const now = new Date(this.clock());
    const line = JSON.stringify({
      s: severity,
      f: 'quarantine.ts',
      i: 0,
      m: message,
      h: hostname(),
      c: now.toUTCString(),
      u: Math.floor(now.getTime() / 1000),
    });
    try {
      this.o.buffer.append(this.o.registrationId, 'status', [line]);
    } catch (err) {
      this.o.log.warn({ err: errorMessage(err) }, 'could not buffer the quarantine status log');
    }
  }
}
