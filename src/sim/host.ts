/**
 * Host identity and osqueryd's time formats.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import type { FlagValues } from './flags.js';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => String(n).padStart(2, '0');

/** asctime() in UTC plus " UTC": `Mon Aug  4 12:34:56 2025 UTC` (docs/protocol/osquery-extensions.md#result-logs). */
export function calendarTime(d: Date): string {
  return (
    `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ` +
    `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()} UTC`
  );
}

export function unixSeconds(d: Date = new Date()): number {
  return Math.floor(d.getTime() / 1000);
}

/** SMBIOS product uuid when readable (usually root only), else undefined. */
export function readProductUuid(): string | undefined {
  try {
    const v = readFileSync('/sys/class/dmi/id/product_uuid', 'utf8').trim();
    return v === '' ? undefined : v.toUpperCase();
  } catch {
    return undefined;
  }
}

export interface HostIds {
  /** Hardware uuid, or one generated once and kept in the database (as osqueryd). */
  uuid: string;
  /** Per-database instance id. */
  instanceId: string;
}

const EPHEMERAL_ID = randomUUID();

/** `--host_identifier`: hostname, uuid, instance, ephemeral or specified. */
export function hostIdentifier(flags: FlagValues, ids: HostIds): string {
  switch (flags.get('host_identifier')) {
    case 'uuid':
      return ids.uuid;
    case 'instance':
      return ids.instanceId;
    case 'ephemeral':
      return EPHEMERAL_ID;
    case 'specified':
      return flags.get('specified_identifier');
    default:
      return os.hostname();
  }
}
