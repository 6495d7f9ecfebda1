import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/ctl-exit.js';
import { runCtl } from '../../src/cli/ctl-run.js';
import { issueClientCertificate, loadCertificateAuthority } from '../../src/control/certs.js';
import { writePrivate } from '../../src/control/certs-init.js';
import type { LauncherHandlers } from '../../src/control/gen/launcher/v1/Launcher.js';
import { launcherApi } from '../../src/control/proto.js';
import type { ControlServer } from '../../src/control/server.js';
import { MutualTlsServerCredentials } from '../../src/control/tls.js';
import { FakeTarget, makePki, startServer, type Pki } from './fixtures.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Run {
  code: number;
  out: string;
  err: string;
}

describe('launcher ctl', () => {
  let pki: Pki;
  let server: ControlServer;
  let target: FakeTarget;

  /** Run `ctl` in-process with captured output, as identity `name`. */
  async function ctl(name: string | undefined, ...argv: string[]): Promise<Run> {
    let out = '';
    let err = '';
    const config = name === undefined ? [] : ['--config', join(pki.dir, name === 'admin' ? 'ctl.json' : `ctl-${name}.json`)];
    const code = await runCtl([...config, ...argv], {
      stdout: (t) => (out += t),
      stderr: (t) => (err += t),
      env: {},
      cwd: pki.dir,
    });
    return { code, out, err };
  }

  beforeAll(async () => {
    pki = await makePki();
    target = new FakeTarget();
    server = await startServer(pki, target);
  });

  afterAll(async () => {
    await server?.close();
    pki?.cleanup();
  });

  it('`ctl --json list` prints an array with id, state, pid and run_id', async () => {
    const res = await ctl('admin', '--json', 'list');
    expect(res.err).toBe('');
    expect(res.code).toBe(EXIT.ok);
    const list = JSON.parse(res.out) as Array<Record<string, unknown>>;
    expect(list.map((i) => i.id)).toEqual(['acme', 'globex']);
    for (const item of list) {
      expect(item).toMatchObject({ state: 'running', pid: 4242 });
      expect(item.run_id).toMatch(/^run-/);
    }
    // --json also works after the subcommand.
    expect(JSON.parse((await ctl('admin', 'list', '--json')).out)).toHaveLength(2);
  });

  it('prints human tables by default', async () => {
    const list = await ctl('admin', 'list');
    expect(list.out.split('\n')[0]).toMatch(/^ID\s+STATE\s+HEALTHY\s+PID/);
    expect(list.out).toMatch(/acme\s+running\s+yes\s+4242/);
    const get = await ctl('tenant-acme', 'get', 'acme');
    expect(get.out).toMatch(/limits\s+mem 512MB, cpu 50% \(cgroup-v2\)/);
    const query = await ctl('admin', 'query', 'acme', 'select name, pid from processes');
    expect(query.out.split('\n')[0]).toMatch(/^name\s+pid$/);
    const history = await ctl('admin', 'history', 'acme', '--limit', '1');
    expect(history.out.trim().split('\n')).toHaveLength(2);
    const version = await ctl('tenant-acme', 'version');
    expect(version.out).toContain('CN=tenant-acme (tenant:acme)');
    const health = await ctl('admin', 'health');
    expect(health.code).toBe(EXIT.ok);
    expect(health.out).toContain('launcher: healthy');
  });

  it('exit code 4 and a clear message on PERMISSION_DENIED', async () => {
    const res = await ctl('tenant-acme', 'get', 'globex');
    expect(res.code).toBe(EXIT.permissionDenied);
    expect(res.out).toBe('');
    expect(res.err).toMatch(/^launcher ctl: permission denied: CN=tenant-acme \(tenant:acme\) may only access registration 'acme'\n$/);
    const enroll = await ctl('tenant-acme', 'enroll', 'evil', '--secret', 'x');
    expect(enroll.code).toBe(EXIT.permissionDenied);
    expect(enroll.err).toMatch(/admin only/);
  });

  it('exit code 3 on an unknown id', async () => {
    const res = await ctl('admin', 'get', 'no-such');
    expect(res.code).toBe(EXIT.notFound);
    expect(res.err).toBe("launcher ctl: not found: registration 'no-such' does not exist\n");
  });

  it('exit code 5 when the launcher is not running', async () => {
    const res = await ctl('admin', '--target', `unix://${join(pki.dir, 'nobody-here.sock')}`, 'list');
    expect(res.code).toBe(EXIT.unavailable);
    expect(res.err).toMatch(/cannot reach the launcher at unix:\/\/.*nobody-here\.sock \(is it running\?\)/);
  });

  it('exit code 6 with the reason for a bad client certificate', async () => {
    const ca = await loadCertificateAuthority(readFileSync(pki.certs.caCert, 'utf8'), readFileSync(join(pki.dir, 'ca.key'), 'utf8'));
    const old = await issueClientCertificate(ca, 'admin', {
      notBefore: new Date('2020-01-01T00:00:00Z'),
      notAfter: new Date('2021-01-01T00:00:00Z'),
    });
    writeFileSync(join(pki.dir, 'old.pem'), old.cert);
    writePrivate(join(pki.dir, 'old.key'), old.key);
    const res = await ctl('admin', '--cert', 'old.pem', '--key', 'old.key', 'list');
    expect(res.code).toBe(EXIT.tls);
    expect(res.err).toMatch(/client certificate .*old\.pem expired on 2021-01-01/);
  });

  it('exit code 2 on usage errors and invalid arguments', async () => {
    expect((await ctl('admin', 'enroll', 'x1', '--secret', 'a', '--secret-file', 'b')).code).toBe(EXIT.usage);
    expect((await ctl('admin', 'history', 'acme', '--limit', 'lots')).code).toBe(EXIT.usage);
    const bad = await ctl('admin', 'get', 'Not-Valid');
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.err).toMatch(/not a valid registration id/);
    const noConfig = await ctl(undefined, 'list');
    expect(noConfig.code).toBe(EXIT.usage);
    expect(noConfig.err).toMatch(/missing --target, --ca, --cert, --key/);
  });

  it('enroll, restart and remove as admin', async () => {
    const enroll = await ctl(
      'admin',
      '--json',
      'enroll',
      'initech',
      '--secret-file',
      'secret.txt',
      '--memory-mb',
      '300',
      '--osquery-flag',
      '--verbose',
    );
    expect(enroll.err).toBe('');
    expect(JSON.parse(enroll.out)).toMatchObject({ id: 'initech', limits: { memory_mb: 300 } });
    expect(target.added.at(-1)).toEqual({
      id: 'initech',
      enrollSecretPath: join(pki.dir, 'secret.txt'),
      limits: { memory_mb: 300 },
      osqueryFlags: ['--verbose'],
    });
    expect((await ctl('admin', 'enroll', 'initech', '--secret', 's')).code).toBe(EXIT.alreadyExists);
    expect((await ctl('admin', 'restart', 'initech')).code).toBe(EXIT.ok);
    expect((await ctl('admin', 'remove', 'initech')).out).toBe('removed initech\n');
  });

  // issue 21: the marker is osquery's own severity (glog's I/W/E/F), not the stream: glog writes info lines on stderr too.
  it("logs prints the current run, each line marked with osquery's severity", async () => {
    const ring = target.newRun('globex');
    ring.append('stdout', 'osqueryd started');
    ring.append('stderr', 'I1122 10:00:00.000123  4242 init.cpp:412] osqueryd started [version=5.12.1]');
    ring.append('stderr', 'W1122 10:00:01.000000  4242 watcher.cpp:1] something odd');
    const res = await ctl('tenant-globex', 'logs', 'globex');
    expect(res.code).toBe(EXIT.ok);
    expect(res.out).toBe(
      '- osqueryd started\nI I1122 10:00:00.000123  4242 init.cpp:412] osqueryd started [version=5.12.1]\nW W1122 10:00:01.000000  4242 watcher.cpp:1] something odd\n',
    );
    const json = await ctl('tenant-globex', '--json', 'logs', 'globex');
    const lines = json.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; severity: string; time: string; run_id: string });
    expect(lines.map((l) => [l.seq, l.severity])).toEqual([
      [0, '-'],
      [1, 'I'],
      [2, 'W'],
    ]);
    expect(lines[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);
    // -f on a run that has ended returns at once (stream.test.ts covers live following).
    ring.close();
    const follow = await ctl('tenant-globex', 'logs', 'globex', '-f');
    expect(follow.code).toBe(EXIT.ok);
    expect(follow.out).toContain('osqueryd started');
    expect(follow.err).toContain('output ended');
  });

  it('`ctl quarantine list|release` and the quarantine line of `ctl get` (issue 16)', async () => {
    expect((await ctl('admin', 'quarantine', 'list')).out).toBe('no quarantined queries\n');
    expect((await ctl('admin', 'get', 'acme')).out).toMatch(/^quarantine\s+none$/m);
    target.quarantined = [
      {
        registration_id: 'acme',
        kind: 'distributed',
        name: '',
        sql_hash: '0123456789abcdef'.repeat(4),
        sql: "select 'boom'\nfrom time",
        query_id: 'q2',
        reason: '2 incidents within 86400 s; last: osqueryd crashed',
        incidents: 2,
        quarantined_at: Date.UTC(2026, 11, 2, 6, 0, 0),
        expires_at: Date.UTC(2026, 11, 9, 6, 0, 0),
        release_handle: '0123456789ab',
      },
    ];
    const list = await ctl('tenant-acme', 'quarantine', 'list', 'acme');
    expect(list.code).toBe(0);
    expect(list.out.split('\n')[0]).toMatch(/^ID\s+KIND\s+RELEASE WITH\s+SQL\s+INCIDENTS\s+SINCE\s+EXPIRES\s+REASON$/);
    expect(list.out).toMatch(/acme\s+distributed\s+0123456789ab\s+select 'boom' from time\s+2\s+2026-12-02T06:00:00.000Z/);
    expect((await ctl('admin', 'get', 'acme')).out).toMatch(/^quarantine\s+1 query: distributed 0123456789ab$/m);
    const json = JSON.parse((await ctl('admin', '--json', 'quarantine', 'list')).out) as Array<{ release_handle: string }>;
    expect(json.map((q) => q.release_handle)).toEqual(['0123456789ab']);
    const other = await ctl('tenant-acme', 'quarantine', 'release', 'globex', '0123456789ab');
    expect(other.code).not.toBe(0);
    expect(other.err).toMatch(/permission/i);
    const released = await ctl('tenant-acme', 'quarantine', 'release', 'acme', '0123456789ab');
    expect(released.code).toBe(0);
    expect(released.out).toBe('released distributed 0123456789ab on acme\n');
    expect(target.quarantined).toEqual([]);
    const again = await ctl('admin', 'quarantine', 'release', 'acme', '0123456789ab');
    expect(again.code).not.toBe(0);
    expect(again.err).toMatch(/no quarantined query/);
  });

  it('the standalone entry (dist/src/cli/ctl-main.js) works and sets its exit code', async () => {
    const main = join(root, 'dist/src/cli/ctl-main.js');
    expect(existsSync(main), 'build first: npx tsc -p .').toBe(true);
    const run = (...argv: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          [main, ...argv],
          { env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 },
          (error, out, err) => resolve({ code: child.exitCode ?? (error ? 1 : 0), out, err }),
        );
      });
    const ok = await run('--config', join(pki.dir, 'ctl.json'), '--json', 'list');
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect((JSON.parse(ok.out) as Array<{ id: string }>).map((i) => i.id)).toEqual(['acme', 'globex']);
    const denied = await run('--config', join(pki.dir, 'ctl-tenant-acme.json'), 'get', 'globex');
    expect(denied.code).toBe(EXIT.permissionDenied);
    // $LAUNCHER_CTL_CONFIG is the default config.
    const viaEnv = await new Promise<number | null>((resolve) => {
      const child = execFile(
        process.execPath,
        [main, 'get', 'nope'],
        { env: { PATH: process.env.PATH ?? '', LAUNCHER_CTL_CONFIG: join(pki.dir, 'ctl.json') } },
        () => resolve(child.exitCode),
      );
    });
    expect(viaEnv).toBe(EXIT.notFound);
  });

  describe('against an older server without some features', () => {
    let old: grpc.Server;
    let address: string;

    beforeAll(async () => {
      // Implements only GetVersion and ListInstances; announces only "instances".
      old = new grpc.Server();
      const handlers: Partial<LauncherHandlers> = {
        GetVersion: (_call, cb) =>
          cb(null, {
            server_version: '0.0.1',
            api_version: 'v1',
            features: ['instances'],
            caller_subject: 'CN=admin',
            caller_role: 'admin',
          }),
        ListInstances: (_call, cb) => cb(null, { instances: [] }),
      };
      old.addService(launcherApi().service, handlers as LauncherHandlers);
      address = `unix://${join(pki.dir, 'old.sock')}`;
      await new Promise<void>((resolve, reject) =>
        old.bindAsync(
          address,
          new MutualTlsServerCredentials({ ca: pki.certs.caCert, cert: pki.certs.serverCert, key: pki.certs.serverKey }),
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    });

    afterAll(async () => {
      await new Promise<void>((resolve) => old.tryShutdown(() => resolve()));
    });

    it('degrades with a clear message instead of failing obscurely', async () => {
      expect((await ctl('admin', '--target', address, 'list')).code).toBe(EXIT.ok);
      const logs = await ctl('admin', '--target', address, 'logs', 'acme', '-f');
      expect(logs.code).toBe(EXIT.unsupported);
      expect(logs.err).toMatch(/server does not support streaming output/);
      const query = await ctl('admin', '--target', address, 'query', 'acme', 'select 1');
      expect(query.code).toBe(EXIT.unsupported);
      expect(query.err).toMatch(/server does not support queries/);
    });
  });
});
