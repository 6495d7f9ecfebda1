/**
 * `kolide_launcher_info` (docs/protocol/device.md#launcher-tables): one row describing this supervisor
 * and this registration. The columns are defined once, in
 * src/state/launcher-info.ts (launcher's columns); this module builds the row
 * from what only this instance's extension knows. `go_version` carries the
 * Node.js version, `enrollment_id` is this instance's registration id
 * (launcher always says "default").
 */
import type { TablePlugin } from '../../src/osquery/plugins.js';
import { launcherInfoTable } from '../../src/state/launcher-info.js';
import { stateTablePlugin } from '../../src/state/table.js';
import type { LauncherInfo } from '../../src/state/types.js';
import type { ExtensionContext } from './context.js';
import { goarch, goos } from './details.js';

/** Column names, in order (derived from the definition). */
export const LAUNCHER_INFO_COLUMNS: readonly string[] = launcherInfoTable.columns.map((c) => c.name);

export function launcherInfo(ctx: ExtensionContext): LauncherInfo {
  const id = ctx.opts.identity;
  return {
    branch: id.branch ?? '',
    build_date: id.buildDate ?? '',
    build_user: id.buildUser ?? '',
    go_version: process.version,
    goarch: goarch(),
    goos: goos(),
    revision: id.revision ?? '',
    version: id.version,
    version_chain: id.versionChain ?? process.env.KOLIDE_LAUNCHER_VERSION_CHAIN ?? '',
    enrollment_id: ctx.opts.registrationId,
    identifier: ctx.hostIdentifier,
    osquery_instance_id: id.osqueryInstanceId?.() ?? '',
    uptime: Math.floor(process.uptime()),
    signing_key: id.signingKey ?? '',
    signing_key_source: id.signingKeySource ?? '',
    local_key: id.localKey ?? '',
    hardware_key: id.hardwareKey ?? '',
    hardware_key_source: id.hardwareKeySource ?? '',
    fingerprint: '',
    public_key: '',
  };
}

export function createLauncherInfoTable(ctx: ExtensionContext): TablePlugin {
  const source = { launcherInfo: () => launcherInfo(ctx) };
  // The row is not owned by a registration, so the scope changes nothing; it is this instance's.
  return stateTablePlugin(launcherInfoTable, () => source, { kind: 'tenant', registrationId: ctx.opts.registrationId });
}
