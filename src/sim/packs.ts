/**
 * The config's `schedule` and `packs` turned into the list of scheduled
 * queries (docs/protocol/osquery-extensions.md#schedule-and-packs): `schedule` is the pack "main" whose queries keep
 * their names; pack queries are named `pack<d><pack><d><query>`. Queries and
 * packs are filtered by platform, minimum version and shard; a pack with
 * `discovery` queries is active only when every one returns a row.
 */
import { createHash } from 'node:crypto';
import type { FlagValues } from './flags.js';
import { glog } from './glog.js';
import { OSQUERY_VERSION, versionAtLeast } from './version.js';

export interface ScheduledQuery {
  name: string;
  query: string;
  /** Seconds, after splay. */
  interval: number;
  snapshot: boolean;
  removed: boolean;
  denylist: boolean;
}

export type PackValue = Record<string, unknown>;
/** Runs a discovery query; true when it returned at least one row. */
export type Discovery = (sql: string, pack: string) => Promise<boolean>;

const MAX_INTERVAL = 604_800;

/** osqueryd's Linux platform filter: empty, any/all, linux, posix and the linux distros match. */
export function platformMatches(platform: unknown): boolean {
  if (platform === undefined || platform === null || platform === '') return true;
  const p = String(platform).toLowerCase();
  return ['any', 'all', 'linux', 'posix', 'ubuntu', 'centos'].some((x) => p.includes(x));
}

/** This host's shard, 1–100, from its identifier. */
export function hostShard(hostIdentifier: string): number {
  return (parseInt(createHash('sha1').update(hostIdentifier).digest('hex').slice(0, 8), 16) % 100) + 1;
}

/** osqueryd's splayValue: a random interval within ±splay% of the original, at least 1. */
export function splay(interval: number, percent: number): number {
  if (percent <= 0 || percent > 100) return interval;
  const delta = Math.floor((interval * percent) / 100);
  if (delta === 0) return interval;
  const min = Math.max(1, interval - delta);
  const max = interval + delta;
  return min + Math.floor(Math.random() * (max - min + 1));
}

function filtered(what: string, v: PackValue, shard: number): boolean {
  if (!platformMatches(v.platform)) {
    glog.vlog('packs.cpp', 160, `Skipping ${what}: platform ${String(v.platform)} does not match`);
    return true;
  }
  if (typeof v.version === 'string' && v.version !== '' && !versionAtLeast(v.version, OSQUERY_VERSION)) {
    glog.vlog('packs.cpp', 166, `Skipping ${what}: requires osquery ${v.version}`);
    return true;
  }
  if (v.shard !== undefined && Number(v.shard) > 0 && Number(v.shard) <= 100 && shard > Number(v.shard)) return true;
  return false;
}

function toQuery(name: string, v: unknown, flags: FlagValues, shard: number): ScheduledQuery | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const q = v as PackValue;
  if (typeof q.query !== 'string' || q.query.trim() === '') {
    glog.warning('packs.cpp', 120, `Scheduled query ${name} has no query`);
    return undefined;
  }
  const interval = q.interval === undefined ? flags.num('schedule_default_interval') : Number(q.interval);
  if (!(Number.isInteger(interval) && interval > 0 && interval <= MAX_INTERVAL)) {
    glog.warning('packs.cpp', 128, `Query has invalid interval: ${name}: ${String(q.interval)}`);
    return undefined;
  }
  if (filtered(`query ${name}`, q, shard)) return undefined;
  return {
    name,
    query: q.query,
    interval: splay(interval, flags.num('schedule_splay_percent')),
    snapshot: q.snapshot === true || q.snapshot === 'true',
    removed: !(q.removed === false || q.removed === 'false'),
    denylist: !(q.denylist === false || q.denylist === 'false'),
  };
}

/** Expand `schedule` and resolved `packs` (pack name → pack object) into scheduled queries. */
export async function scheduledQueries(
  schedule: Record<string, unknown>,
  packs: Record<string, PackValue>,
  flags: FlagValues,
  hostIdentifier: string,
  discovery: Discovery,
): Promise<ScheduledQuery[]> {
  const shard = hostShard(hostIdentifier);
  const out: ScheduledQuery[] = [];
  for (const [name, v] of Object.entries(schedule)) {
    const q = toQuery(name, v, flags, shard);
    if (q) out.push(q);
  }
  const d = flags.get('pack_delimiter');
  for (const [pack, value] of Object.entries(packs)) {
    if (filtered(`pack ${pack}`, value, shard)) continue;
    const probes = Array.isArray(value.discovery) ? value.discovery.filter((s): s is string => typeof s === 'string') : [];
    let active = true;
    for (const sql of probes) {
      if (!(await discovery(sql, pack))) {
        active = false;
        break;
      }
    }
    if (!active) {
      glog.vlog('packs.cpp', 210, `Pack ${pack} is not active: a discovery query returned no rows`);
      continue;
    }
    const queries = typeof value.queries === 'object' && value.queries !== null ? (value.queries as Record<string, unknown>) : {};
    for (const [qname, qv] of Object.entries(queries)) {
      const q = toQuery(`pack${d}${pack}${d}${qname}`, qv, flags, shard);
      if (q) out.push(q);
    }
  }
  return out;
}
