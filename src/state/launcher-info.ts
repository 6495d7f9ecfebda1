/**
 * `kolide_launcher_info` as a state table: one row, the launcher's identity as
 * the asking instance's extension knows it. Its row is per instance (the
 * instance's own registration id, host identifier and osquery instance id), so
 * the extension produces it (`extensions/kolide_grpc/launcher-info-table.ts`)
 * rather than the supervisor-wide StateSource; the column list lives only here.
 * Every column is TEXT, as in launcher.
 */
import { columnsOf, defineStateTable, type ColumnSpec, type FieldPath } from './table.js';
import type { LauncherInfo } from './types.js';

/** Where the single row comes from: the extension of the instance being asked. */
export interface LauncherInfoSource {
  launcherInfo(): LauncherInfo;
}

const column = columnsOf<LauncherInfo>();
/** Launcher's column name is the field name. */
const text = <P extends FieldPath<LauncherInfo>>(field: P, description: string) =>
  column<P>({ name: field, type: 'TEXT', field, description } as ColumnSpec<LauncherInfo, P>);

export const launcherInfoTable = defineStateTable<LauncherInfo, LauncherInfoSource>()({
  name: 'kolide_launcher_info',
  description: 'The launcher (this supervisor) as the asking instance sees it; one row.',
  // Not owned by a registration: every scope sees its own instance's row.
  owner: () => undefined,
  rows: (s) => [s.launcherInfo()],
  columns: [
    text('branch', 'Build branch'),
    text('build_date', 'Build date'),
    text('build_user', 'Build user'),
    text('go_version', 'Runtime version (Node.js here, Go in launcher)'),
    text('goarch', 'CPU architecture, Go naming'),
    text('goos', 'Operating system, Go naming'),
    text('revision', 'Build revision'),
    text('version', 'Launcher version'),
    text('version_chain', 'Colon-joined versions across re-execs'),
    text('enrollment_id', "This instance's registration id (launcher: default)"),
    text('identifier', "This registration's host identifier"),
    text('osquery_instance_id', "This registration's latest osquery instance id"),
    text('uptime', 'Seconds the supervisor has been up'),
    text('signing_key', 'Signing key'),
    text('signing_key_source', 'Where the signing key comes from'),
    text('local_key', 'Local key'),
    text('hardware_key', 'Hardware key'),
    text('hardware_key_source', 'Where the hardware key comes from'),
    text('fingerprint', 'Key fingerprint'),
    text('public_key', 'Public key'),
  ],
});
