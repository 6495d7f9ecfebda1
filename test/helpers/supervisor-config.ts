/**
 * The `launcher.yaml` the end-to-end tests run `bin/launcher run` with: the
 * stand-in osqueryd, the local device server over plain HTTP, the mTLS
 * control API on a Unix socket, and quick publish/health/forwarding
 * intervals so tests need not wait.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CertsInitResult } from '../../src/control/certs-init.js';

export interface SupervisorConfigOptions {
  /** Repository root (for bin/osqueryd-sim). */
  repo: string;
  root: string;
  deviceServerUrl: string;
  /** Registrations at start: id and the file holding its enroll secret. */
  registrations: Array<{ id: string; secretPath: string }>;
  /** `unix://…` control API address. */
  listen: string;
  certs: CertsInitResult;
}

/** Write the config to `file`. */
export function writeSupervisorConfig(file: string, o: SupervisorConfigOptions): void {
  const roles = JSON.parse(readFileSync(o.certs.rolesFile, 'utf8')) as Record<string, string>;
  writeFileSync(
    file,
    [
      `root_directory: ${o.root}`,
      `osqueryd_path: ${join(o.repo, 'bin/osqueryd-sim')}`,
      'log_level: debug',
      `device_server: {url: "${o.deviceServerUrl}", insecure_transport: true}`,
      'registrations:',
      ...o.registrations.map((r) => `  - {id: ${r.id}, enroll_secret_path: ${r.secretPath}}`),
      'control:',
      `  listen: "${o.listen}"`,
      `  ca: ${o.certs.caCert}`,
      `  cert: ${o.certs.serverCert}`,
      `  key: ${o.certs.serverKey}`,
      `  roles: ${JSON.stringify(roles)}`,
      'log_buffer: {publish_interval_seconds: 0.5}',
      'health: {interval_seconds: 1, startup_delay_seconds: 1, failures: 3}',
      'distributed_forwarding_interval_seconds: 1',
      '',
    ].join('\n'),
  );
}
