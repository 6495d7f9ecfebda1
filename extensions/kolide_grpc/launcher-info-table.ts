/**
 * `kolide_launcher_info` (reference §5): one row describing this supervisor
 * and this registration. Same columns as launcher's table; `go_version`
 * carries the Node.js version, `enrollment_id` is this instance's
 * registration id (launcher always says "default").
 */
import type { ColumnDefinition, Row, TablePlugin } from '../../src/osquery/plugins.js';
import type { ExtensionContext } from './context.js';
import { goarch, goos } from './details.js';

export const LAUNCHER_INFO_COLUMNS = [
  'branch',
  'build_date',
  'build_user',
  'go_version',
  'goarch',
  'goos',
  'revision',
  'version',
  'version_chain',
  'enrollment_id',
  'identifier',
  'osquery_instance_id',
  'uptime',
  'signing_key',
  'signing_key_source',
  'local_key',
  'hardware_key',
  'hardware_key_source',
  'fingerprint',
  'public_key',
] as const;

export function createLauncherInfoTable(ctx: ExtensionContext): TablePlugin {
  const columns: ColumnDefinition[] = LAUNCHER_INFO_COLUMNS.map((name) => ({ name, type: 'TEXT' }));
  return {
    kind: 'table',
    name: 'kolide_launcher_info',
    columns,
    generate(): Row[] {
      const id = ctx.opts.identity;
      const row: Record<(typeof LAUNCHER_INFO_COLUMNS)[number], string> = {
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
        uptime: String(Math.floor(process.uptime())),
        signing_key: id.signingKey ?? '',
        signing_key_source: id.signingKeySource ?? '',
        local_key: id.localKey ?? '',
        hardware_key: id.hardwareKey ?? '',
        hardware_key_source: id.hardwareKeySource ?? '',
        fingerprint: '',
        public_key: '',
      };
      return [row];
    },
  };
}
