/**
 * Check: tenants' osqueryd can get their own view of the filesystem (issue
 * 22): the launcher runs as root, `unshare --mount` works and setpriv gives
 * osqueryd the credentials that keep /proc/<pid>/root closed. Otherwise the
 * instances still start, with `isolation: unavailable`, so this is a warning:
 * a tenant's SQL could then read the supervisor's files (file, hash, yara…).
 */
import { readFileSync } from 'node:fs';
import { ISOLATION_GID_MIN, ISOLATION_GID_SPAN, isolationUnavailableReason } from '../runtime/instance/isolation.js';
import type { CheckResult, DoctorContext } from './types.js';

/**
 * Groups of the host's group database whose gid lies in the range tenants' osqueryd get their real gid from
 * (ADR 0016, decision 6): members of such a group would share a tenant's gid. Unreadable file: none.
 */
export function groupsInIsolationRange(groupFile = '/etc/group'): string[] {
  let text: string;
  try {
    text = readFileSync(groupFile, 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    const n = Number(gid);
    if (name && gid && Number.isInteger(n) && n >= ISOLATION_GID_MIN && n < ISOLATION_GID_MIN + ISOLATION_GID_SPAN)
      out.push(`${name} (${n})`);
  }
  return out;
}

export async function checkIsolation(ctx: DoctorContext, euid = process.geteuid?.(), groupFile = '/etc/group'): Promise<CheckResult> {
  const name = 'isolation';
  if (ctx.config?.isolation_namespaces === 'off') {
    return {
      name,
      status: 'warn',
      detail:
        "isolation_namespaces is off in the configuration: tenants' osqueryd see the whole host, the supervisor's root directory included",
    };
  }
  const reason = isolationUnavailableReason(euid === undefined ? {} : { euid });
  if (reason) {
    return {
      name,
      status: 'warn',
      detail: `filesystem isolation unavailable: ${reason}; tenants' osqueryd would start with isolation: unavailable and could read the supervisor's files`,
    };
  }
  const clash = groupsInIsolationRange(groupFile);
  if (clash.length > 0) {
    return {
      name,
      status: 'warn',
      detail: `groups ${clash.join(', ')} lie in the range tenants' osqueryd take their real gid from (${ISOLATION_GID_MIN}..${ISOLATION_GID_MIN + ISOLATION_GID_SPAN - 1}); their members would share a tenant's gid`,
    };
  }
  return {
    name,
    status: 'pass',
    detail:
      "private mount namespaces and setpriv work: each tenant's osqueryd gets its own view of the filesystem, closed to other tenants' /proc/<pid>/root (isolation: filesystem)",
  };
}
