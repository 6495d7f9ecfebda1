/**
 * Check: tenants' osqueryd can get their own view of the filesystem (issue
 * 22): the launcher runs as root, `unshare --mount` works and setpriv gives
 * osqueryd the credentials that keep /proc/<pid>/root closed. Otherwise the
 * instances still start, with `isolation: unavailable`, so this is a warning:
 * a tenant's SQL could then read the supervisor's files (file, hash, yara…).
 */
import { isolationUnavailableReason } from '../runtime/instance/isolation.js';
import type { CheckResult, DoctorContext } from './types.js';

export async function checkIsolation(ctx: DoctorContext, euid = process.geteuid?.()): Promise<CheckResult> {
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
  return {
    name,
    status: 'pass',
    detail:
      "private mount namespaces and setpriv work: each tenant's osqueryd gets its own view of the filesystem, closed to other tenants' /proc/<pid>/root (isolation: filesystem)",
  };
}
