/**
 * SIGHUP: reload the configuration file (issue 18, ADR 0020). The plan is a
 * pure comparison of the configuration in force with the new file:
 *
 * - a registration in the new file and not in the one in force is added
 *   (started); one that was in force and is gone is removed (stopped, its
 *   files deleted, as `ctl remove`); one whose secret, limits, flags or
 *   isolation differ is restarted with the new settings (its node key kept);
 *   every other registration, and its osqueryd, is left alone.
 * - Registrations enrolled through the control API ("runtime" origin: not in
 *   the file in force) are never touched by a reload, unless the new file names
 *   the same id: then the file takes it over (its settings applied if they
 *   differ).
 * - What a running supervisor cannot change in place (root directory, osqueryd,
 *   device server, control API, store, timings) is not applied: the reload says
 *   which keys need a restart. `log_level` is applied.
 * - The vendor (the first registration, which sees every tenant's rows) cannot
 *   be renamed or removed by a reload: such a file is rejected, as is a file
 *   that does not parse or fails a start-up check; a rejected file changes nothing.
 */
import { isDeepStrictEqual } from 'node:util';
import type { LauncherConfig, RegistrationConfig } from '../config/schema.js';
import { LauncherError } from '../errors.js';
import type { RegistrationId } from '../registration.js';

export interface ReloadPlan {
  add: RegistrationConfig[];
  remove: RegistrationId[];
  change: RegistrationConfig[];
  /** Registrations enrolled at runtime that the new file now names (part of `change` or unchanged). */
  adopted: RegistrationId[];
  /** Top-level keys whose new value needs a supervisor restart (not applied). */
  restartNeeded: string[];
  logLevelChanged: boolean;
}

/** Keys compared for "the registration's settings changed". */
function settings(r: RegistrationConfig): unknown {
  return {
    enroll_secret: r.enroll_secret,
    enroll_secret_path: r.enroll_secret_path,
    limits: r.limits,
    osquery_flags: r.osquery_flags,
    isolation: r.isolation,
  };
}

/**
 * Compare `current` (the file in force) with `next`. `known` is every
 * registration id the supervisor runs (file and runtime), `vendorId` the
 * running vendor. E_CONFIG when the new file renames or drops the vendor.
 */
export function planReload(
  current: LauncherConfig,
  next: LauncherConfig,
  known: ReadonlySet<string>,
  vendorId: string,
  source: string,
): ReloadPlan {
  const nextVendor = next.registrations[0]?.id;
  const wasVendorInFile = current.registrations[0]?.id === vendorId;
  if (wasVendorInFile && nextVendor !== vendorId) {
    throw new LauncherError(
      'E_CONFIG',
      `invalid configuration in ${source}: registrations.0.id: the vendor registration is ${JSON.stringify(vendorId)} and a reload cannot ${
        nextVendor === undefined ? 'remove it' : `rename it to ${JSON.stringify(nextVendor)}`
      } (the vendor sees every tenant's rows); restart the supervisor to change the vendor`,
    );
  }
  const before = new Map(current.registrations.map((r) => [r.id, r]));
  const after = new Map(next.registrations.map((r) => [r.id, r]));
  const plan: ReloadPlan = { add: [], remove: [], change: [], adopted: [], restartNeeded: [], logLevelChanged: false };
  for (const r of next.registrations) {
    const old = before.get(r.id);
    if (old) {
      if (!isDeepStrictEqual(settings(old), settings(r))) plan.change.push(r);
      // A pin from the file is read once at start (the update service holds it): say so instead of ignoring it.
      if ((old.osqueryd_version ?? null) !== (r.osqueryd_version ?? null))
        plan.restartNeeded.push(`registrations.${r.id}.osqueryd_version`);
    } else if (known.has(r.id)) {
      // Enrolled at runtime, now in the file: the file owns it from now on.
      plan.adopted.push(r.id);
      plan.change.push(r);
    } else plan.add.push(r);
  }
  for (const r of current.registrations) if (!after.has(r.id)) plan.remove.push(r.id);
  for (const key of Object.keys(next) as Array<keyof LauncherConfig>) {
    if (key === 'registrations' || key === 'log_level') continue;
    if (!isDeepStrictEqual(current[key], next[key])) plan.restartNeeded.push(key);
  }
  plan.logLevelChanged = current.log_level !== next.log_level;
  return plan;
}
