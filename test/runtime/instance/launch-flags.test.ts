/**
 * issue 15: launcher also passes `--tls_server_certs` (the PEM bundle osqueryd's
 * own TLS features trust) and `--augeas_lenses` (when its lenses directory
 * exists). Built in launcher's positions, and seen by a real stand-in osqueryd.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { augeasLensesPath, buildOsquerydArgs, tlsServerCertsPath } from '../../../src/runtime/instance/flags.js';
import { dumpLogs, startRunner, type Harness } from '../harness.js';
import { tempRoot } from '../helpers.js';
import { parseRegistrationId as rid } from '../../../src/registration.js';

const base = {
  names: { extensionName: 'kolide_grpc', configPlugin: 'kolide_grpc', loggerPlugin: 'kolide_grpc', distributedPlugin: 'kolide_grpc' },
  pidfilePath: '/r/p.pid',
  databasePath: '/r/db',
  socketPath: '/r/s.sock',
  watchdogFlags: ['--disable_watchdog'],
  userFlags: [],
};

let h: Harness | undefined;
const cleanups: Array<() => void> = [];
afterEach(async (ctx) => {
  dumpLogs(h, ctx.task.result?.state === 'fail');
  const leaked = await h?.stop();
  h = undefined;
  for (const c of cleanups.splice(0)) c();
  expect(leaked ?? []).toEqual([]);
});

describe('--tls_server_certs and --augeas_lenses (issue 15)', () => {
  it('are placed where launcher puts them, and left out when they do not apply', () => {
    const args = buildOsquerydArgs({ ...base, tlsServerCerts: '/etc/root.pem', augeasLenses: '/r/augeas-lenses' });
    expect(args.indexOf('--tls_server_certs=/etc/root.pem')).toBe(args.indexOf('--utc') + 1);
    expect(args.indexOf('--augeas_lenses=/r/augeas-lenses')).toBe(args.findIndex((a) => a.startsWith('--config_accelerated_refresh=')) + 1);
    const none = buildOsquerydArgs(base);
    expect(none.some((a) => a.startsWith('--tls_server_certs') || a.startsWith('--augeas_lenses'))).toBe(false);
  });

  it('use the configured root PEM first, then a system bundle, and the lenses directory only when it exists', () => {
    const t = tempRoot('lf');
    try {
      const bundle = join(t.dir, 'bundle.crt');
      writeFileSync(bundle, '');
      expect(tlsServerCertsPath('/cfg/root.pem', [bundle])).toBe('/cfg/root.pem');
      expect(tlsServerCertsPath(undefined, [join(t.dir, 'missing.crt'), bundle])).toBe(bundle);
      expect(tlsServerCertsPath(undefined, [join(t.dir, 'missing.crt')])).toBeUndefined();
      expect(augeasLensesPath(t.dir)).toBeUndefined();
      mkdirSync(join(t.dir, 'augeas-lenses'));
      expect(augeasLensesPath(t.dir)).toBe(join(t.dir, 'augeas-lenses'));
    } finally {
      t.cleanup();
    }
  });

  it('reach a real osqueryd', async () => {
    const t = tempRoot('lp');
    cleanups.push(t.cleanup);
    const pem = join(t.dir, 'root.pem');
    writeFileSync(pem, '');
    h = await startRunner({ tlsServerCerts: pem });
    mkdirSync(join(h.root, 'augeas-lenses'));
    await h.runner.add({ id: 'tenant' });
    await h.runner.waitHealthy(rid('tenant'), 30_000);
    const flag = async (name: string) =>
      (await h!.runner.query(rid('tenant'), `select value from osquery_flags where name = '${name}'`))[0]?.value;
    expect(await flag('tls_server_certs')).toBe(pem);
    expect(await flag('augeas_lenses')).toBe(join(h.root, 'augeas-lenses'));
  });
});
