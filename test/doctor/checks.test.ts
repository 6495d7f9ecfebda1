// The doctor checks one by one, against real files, real certificates, real TLS and TCP
// servers on 127.0.0.1, and fake cgroup trees.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initCertificates, writePrivate, writePublic } from '../../src/control/certs-init.js';
import { createCertificateAuthority, issueServerCertificate } from '../../src/control/certs.js';
import { spkiSha256 } from '../../src/device/tls.js';
import { checkCgroups } from '../../src/doctor/cgroups.js';
import { checkControlCertificates } from '../../src/doctor/control-certs.js';
import { checkDeviceServer } from '../../src/doctor/device-server.js';
import { checkOsqueryd, parseOsquerydVersion } from '../../src/doctor/osqueryd.js';
import { checkRootDirectory } from '../../src/doctor/root-directory.js';
import { checkService, judgeUnit, parseSystemctlShow } from '../../src/doctor/service.js';
import { checkSocketPaths } from '../../src/doctor/socket-paths.js';
import { Findings } from '../../src/doctor/types.js';
import { X509Certificate } from 'node:crypto';
import { shortTempDir } from '../helpers/tmp.js';
import { closedPort, config, context, SIM } from './support.js';

const DAY = 86_400_000;
let t: { dir: string; cleanup: () => void };
let certDir = '';
const servers: Server[] = [];
const closers = new Map<Server, () => void>();

beforeAll(async () => {
  t = shortTempDir('chk');
  certDir = join(t.dir, 'c');
  await initCertificates({ dir: certDir, admins: ['admin'] });
});

afterAll(() => t?.cleanup());

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((s) => {
      const done = new Promise<void>((r) => s.close(() => r()));
      closers.get(s)?.();
      closers.delete(s);
      return done;
    }),
  );
});

/** Listen on 127.0.0.1; connections are tracked so afterEach can close the server even if a test failed midway. */
function listen(server: Server): Promise<number> {
  servers.push(server);
  const open = new Set<Socket>();
  server.on('connection', (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  closers.set(server, () => {
    for (const s of open) s.destroy();
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
}

function tlsServer(cert: string, key: string): Promise<number> {
  const srv = createTlsServer({ cert: readFileSync(cert), key: readFileSync(key) }, (s) => s.end());
  srv.on('tlsClientError', () => undefined);
  return listen(srv);
}

const control = (files: { ca?: string; cert?: string; key?: string }) =>
  config({ control: { ca: join(certDir, 'ca.pem'), cert: join(certDir, 'server.pem'), key: join(certDir, 'server.key'), ...files } });

describe('osqueryd check', () => {
  it('finds the configured binary and reads its version', async () => {
    const r = await checkOsqueryd(context(config({ osqueryd_path: SIM })));
    expect(r.status, r.detail).toBe('pass');
    expect(r.detail).toMatch(/osqueryd_path.*osqueryd version \d+\.\d+\.\d+/);
  });

  it('fails for a binary that is missing, or that does not answer --version', async () => {
    expect((await checkOsqueryd(context(config({ osqueryd_path: join(t.dir, 'nope') })))).status).toBe('fail');
    const broken = join(t.dir, 'broken-osqueryd');
    writeFileSync(broken, '#!/bin/sh\necho "no such flag" >&2\nexit 3\n', { mode: 0o755 });
    const r = await checkOsqueryd(context(config({ osqueryd_path: broken })));
    expect(r).toMatchObject({ status: 'fail' });
    expect(r.detail).toContain('exit code 3 (no such flag)');
    const hangs = join(t.dir, 'hanging-osqueryd');
    writeFileSync(hangs, '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
    const h = await checkOsqueryd(context(config({ osqueryd_path: hangs }), { timeoutMs: 300 }));
    expect(h.status).toBe('fail');
    expect(h.detail).toContain('no answer within 300 ms');
  });

  it('searches PATH when osqueryd_path is auto', async () => {
    const bin = join(t.dir, 'pathbin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'osqueryd'), '#!/bin/sh\necho "osqueryd version 5.11.0"\n', { mode: 0o755 });
    const r = await checkOsqueryd(context(config({}), { env: { PATH: bin } }));
    expect(r).toMatchObject({ status: 'pass' });
    expect(r.detail).toContain('found on PATH');
    expect(parseOsquerydVersion('osqueryd version 5.12.1-sim\n')).toBe('5.12.1-sim');
  });
});

describe('root directory check', () => {
  it('passes for a private writable directory, warns for one others can read', async () => {
    const root = join(t.dir, 'root-ok');
    mkdirSync(root, { mode: 0o700 });
    expect((await checkRootDirectory(context(config({ root_directory: root })))).status).toBe('pass');
    chmodSync(root, 0o755);
    const r = await checkRootDirectory(context(config({ root_directory: root })));
    expect(r.status).toBe('warn');
    expect(r.detail).toContain('mode 0755');
  });

  it('passes for a missing directory that can be created, fails when a file is in the way', async () => {
    expect((await checkRootDirectory(context(config({ root_directory: join(t.dir, 'new', 'deeper') })))).status).toBe('pass');
    writeFileSync(join(t.dir, 'plainfile'), '');
    const r = await checkRootDirectory(context(config({ root_directory: join(t.dir, 'plainfile', 'r') })));
    expect(r).toMatchObject({ status: 'fail' });
    expect(r.detail).toContain(`${join(t.dir, 'plainfile')} is not a directory`);
    const f = await checkRootDirectory(context(config({ root_directory: join(t.dir, 'plainfile') })));
    expect(f.detail).toContain('exists but is not a directory');
  });
});

// issue 20: the database in the root directory must be 0600 (old code looked at the directory only).
describe('root directory check: the database', () => {
  it('warns for a database others can read, passes at 0600, fails for a symlink in its place', async () => {
    const root = join(t.dir, 'root-db');
    mkdirSync(root, { mode: 0o700 });
    writeFileSync(join(root, 'launcher.sqlite'), '', { mode: 0o644 });
    chmodSync(join(root, 'launcher.sqlite'), 0o644);
    const loose = await checkRootDirectory(context(config({ root_directory: root })));
    expect(loose.status).toBe('warn');
    expect(loose.detail).toContain(`${join(root, 'launcher.sqlite')} has mode 0644; expected 0600`);
    chmodSync(join(root, 'launcher.sqlite'), 0o600);
    writeFileSync(join(root, 'launcher.sqlite-wal'), '', { mode: 0o600 });
    const tight = await checkRootDirectory(context(config({ root_directory: root })));
    expect(tight.status, tight.detail).toBe('pass');
    expect(tight.detail).toContain(`${join(root, 'launcher.sqlite')} has mode 0600`);
    chmodSync(join(root, 'launcher.sqlite-wal'), 0o640);
    expect((await checkRootDirectory(context(config({ root_directory: root })))).detail).toContain('launcher.sqlite-wal has mode 0640');
  });
});

// issue 20: doctor reports on the systemd service (installed, enabled, active) when systemd is PID 1.
describe('service check', () => {
  it('is skipped, with the reason, when systemd is not PID 1', async () => {
    const r = await checkService(context(config({}), { systemdRunDir: join(t.dir, 'no-such-run-dir') }));
    expect(r.status).toBe('pass');
    expect(r.detail).toContain(`skipped: systemd is not PID 1 here (${join(t.dir, 'no-such-run-dir')} does not exist)`);
  });

  it('judges what `systemctl show` reports: missing and failed units fail, disabled or inactive ones warn', () => {
    const judge = (text: string) => judgeUnit(new Findings('service'), 'osquery-launcher.service', parseSystemctlShow(text)).result();
    const good = judge(
      'LoadState=loaded\nUnitFileState=enabled\nActiveState=active\nSubState=running\nFragmentPath=/lib/systemd/system/osquery-launcher.service\n',
    );
    expect(good.status, good.detail).toBe('pass');
    expect(good.detail).toContain('/lib/systemd/system/osquery-launcher.service');
    const missing = judge('LoadState=not-found\nUnitFileState=\nActiveState=inactive\nSubState=dead\nFragmentPath=\n');
    expect(missing.status).toBe('fail');
    expect(missing.detail).toContain('is not installed (LoadState=not-found)');
    const disabled = judge('LoadState=loaded\nUnitFileState=disabled\nActiveState=inactive\nSubState=dead\nFragmentPath=/x\n');
    expect(disabled.status).toBe('warn');
    expect(disabled.detail).toContain('is disabled: it will not start at boot');
    expect(disabled.detail).toContain('is inactive (dead)');
    const failed = judge('LoadState=loaded\nUnitFileState=enabled\nActiveState=failed\nSubState=failed\nFragmentPath=/x\n');
    expect(failed.status).toBe('fail');
    expect(failed.detail).toContain('has failed');
  });

  it("fails with systemctl's own words when the marker exists but systemctl cannot answer", async () => {
    // A marker directory that exists on a host where systemd is not running: systemctl show fails.
    if (existsSync('/run/systemd/system')) return;
    mkdirSync(join(t.dir, 'fake-run'), { recursive: true });
    const r = await checkService(context(config({}), { systemdRunDir: join(t.dir, 'fake-run') }));
    expect(r.status).toBe('fail');
    expect(r.detail).toMatch(/systemctl show osquery-launcher\.service: \S/);
  });
});

describe('socket paths check', () => {
  it('passes for a short root, warns when only the tmpdir fallback fits, fails when nothing fits', async () => {
    expect((await checkSocketPaths(context(config({ root_directory: '/var/lib/osquery-launcher' })))).status).toBe('pass');
    // 90 bytes: <root>/s/<12>.em is too long, <root>/control.sock (103) still fits.
    const medium = `/${'m'.repeat(89)}`;
    const warn = await checkSocketPaths(context(config({ root_directory: medium }), { tmpdir: '/tmp' }));
    expect(warn.status, warn.detail).toBe('warn');
    expect(warn.detail).toMatch(/osquery sockets go to \/tmp\/olr-[0-9a-f]{12}/);
    const long = `/${'l'.repeat(120)}`;
    const fail = await checkSocketPaths(context(config({ root_directory: long }), { tmpdir: '/tmp' }));
    expect(fail.status).toBe('fail');
    expect(fail.detail).toMatch(/control socket.*107-byte limit/);
    // With the control API on TCP and a tmpdir that is too long as well, the osquery socket alone fails.
    const both = await checkSocketPaths(
      context(config({ root_directory: long, control: { listen: '127.0.0.1:7443' } }), { tmpdir: `/${'t'.repeat(100)}` }),
    );
    expect(both.status).toBe('fail');
    expect(both.detail).toMatch(/is too long: the osquery socket .* over the 97-byte limit/);
  });
});

describe('cgroups check', () => {
  function fakeRoot(name: string, files: Record<string, string>): string {
    const root = join(t.dir, name);
    for (const [rel, text] of Object.entries(files)) {
      mkdirSync(join(root, rel, '..'), { recursive: true });
      writeFileSync(join(root, rel), text);
    }
    return root;
  }

  it('passes with cgroup v2 memory and cpu, warns (watchdog fallback) without them', async () => {
    const v2 = fakeRoot('cg2', { 'cgroup.controllers': 'cpuset cpu io memory pids\n' });
    expect((await checkCgroups(context(undefined, { cgroupRoot: v2 }))).status).toBe('pass');
    const noMem = fakeRoot('cg2b', { 'cgroup.controllers': 'cpu pids\n' });
    const r = await checkCgroups(context(undefined, { cgroupRoot: noMem }));
    expect(r.status).toBe('warn');
    expect(r.detail).toMatch(/lacks the memory controller.*watchdog/);
    const none = await checkCgroups(context(undefined, { cgroupRoot: join(t.dir, 'no-cgroups') }));
    expect(none.status).toBe('warn');
    expect(none.detail).toContain('watchdog');
  });

  it('passes with cgroup v1 memory and cpu hierarchies', async () => {
    const v1 = fakeRoot('cg1', { 'memory/cgroup.procs': '', 'cpu,cpuacct/cgroup.procs': '' });
    expect((await checkCgroups(context(undefined, { cgroupRoot: v1 }))).status).toBe('pass');
  });
});

describe('device server check', () => {
  it('passes a verified TLS handshake, warns with verification off, fails with the wrong roots or a pin mismatch', async () => {
    const port = await tlsServer(join(certDir, 'server.pem'), join(certDir, 'server.key'));
    const url = `https://127.0.0.1:${port}`;
    const ok = await checkDeviceServer(context(config({ device_server: { url, root_pem: join(certDir, 'ca.pem') } })));
    expect(ok.status, ok.detail).toBe('pass');

    const insecure = await checkDeviceServer(context(config({ device_server: { url, insecure: true } })));
    expect(insecure.status).toBe('warn');
    expect(insecure.detail).toContain('verification is OFF');

    const systemRoots = await checkDeviceServer(context(config({ device_server: { url } })));
    expect(systemRoots.status).toBe('fail');
    expect(systemRoots.detail).toMatch(/TLS handshake with 127\.0\.0\.1:\d+ failed \(system roots\)/);

    const pin = await checkDeviceServer(
      context(config({ device_server: { url, root_pem: join(certDir, 'ca.pem'), cert_pins: ['ab'.repeat(32)] } })),
    );
    expect(pin.status).toBe('fail');
    expect(pin.detail).toContain('pin mismatch');

    const caPin = spkiSha256({ raw: new X509Certificate(readFileSync(join(certDir, 'ca.pem'))).raw });
    const pinned = await checkDeviceServer(
      context(config({ device_server: { url, root_pem: join(certDir, 'ca.pem'), cert_pins: [caPin] } })),
    );
    expect(pinned.status, pinned.detail).toBe('pass');
  });

  it('warns for plain HTTP with insecure_transport, fails when nothing listens or nothing answers in time', async () => {
    const port = await listen(createTcpServer((s) => s.resume().end()));
    const http = await checkDeviceServer(context(config({ device_server: { url: `http://127.0.0.1:${port}`, insecure_transport: true } })));
    expect(http.status).toBe('warn');
    expect(http.detail).toContain('plain HTTP');

    const refused = await checkDeviceServer(context(config({ device_server: { url: `https://127.0.0.1:${await closedPort()}` } })));
    expect(refused.status).toBe('fail');
    expect(refused.detail).toContain('ECONNREFUSED');

    // Accepts TCP and reads, never speaks TLS.
    const silent = await listen(createTcpServer((s) => s.resume()));
    const timeout = await checkDeviceServer(context(config({ device_server: { url: `https://127.0.0.1:${silent}` } }), { timeoutMs: 300 }));
    expect(timeout.status).toBe('fail');
    expect(timeout.detail).toContain('no answer within 300 ms');

    const plain = await checkDeviceServer(context(config({ device_server: { url: `http://127.0.0.1:${port}` } })));
    expect(plain.status).toBe('fail');
    expect(plain.detail).toContain('plain http');
  });
});

describe('control certificates check', () => {
  it('passes for certificates from `launcher certs init`', async () => {
    const r = await checkControlCertificates(context(control({})));
    expect(r.status, r.detail).toBe('pass');
    expect(r.detail).toMatch(/key .* matches the certificate/);
  });

  it('fails for a missing file, a key of another certificate, or a certificate from another CA', async () => {
    const missing = await checkControlCertificates(context(control({ cert: join(certDir, 'nope.pem') })));
    expect(missing).toMatchObject({ status: 'fail' });
    expect(missing.detail).toContain('nope.pem: missing');

    const wrongKey = await checkControlCertificates(context(control({ key: join(certDir, 'admin.key') })));
    expect(wrongKey.status).toBe('fail');
    expect(wrongKey.detail).toContain('does not belong to certificate');

    const other = shortTempDir('oca');
    try {
      await initCertificates({ dir: other.dir, admins: ['admin'] });
      const foreign = await checkControlCertificates(context(control({ ca: join(other.dir, 'ca.pem') })));
      expect(foreign.status).toBe('fail');
      expect(foreign.detail).toContain('was not issued by the CA');
    } finally {
      other.cleanup();
    }

    const unset = await checkControlCertificates(context(config({ control: { enabled: true } })));
    expect(unset.status).toBe('fail');
    expect(unset.detail).toContain('control.ca, control.cert, control.key not set');
    expect((await checkControlCertificates(context(config({ control: { enabled: false } })))).status).toBe('pass');
  });

  it('fails for an expired or not yet valid certificate, warns within 30 days of expiry and for a readable key', async () => {
    const ca = await createCertificateAuthority();
    const dir = join(t.dir, 'validity');
    mkdirSync(dir);
    writePublic(join(dir, 'ca.pem'), ca.cert);
    const issue = async (name: string, notBefore: Date, notAfter: Date) => {
      const c = await issueServerCertificate(ca, { notBefore, notAfter });
      writePublic(join(dir, `${name}.pem`), c.cert);
      writePrivate(join(dir, `${name}.key`), c.key);
      return { ca: join(dir, 'ca.pem'), cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
    };
    const now = Date.now();
    const expired = await checkControlCertificates(context(control(await issue('expired', new Date(now - 60 * DAY), new Date(now - DAY)))));
    expect(expired.status).toBe('fail');
    expect(expired.detail).toMatch(/server certificate CN=.* expired on \d{4}-\d\d-\d\d/);

    const future = await checkControlCertificates(context(control(await issue('future', new Date(now + DAY), new Date(now + 400 * DAY)))));
    expect(future.status).toBe('fail');
    expect(future.detail).toContain('is not valid before');

    const soon = await issue('soon', new Date(now - DAY), new Date(now + 10 * DAY));
    const warn = await checkControlCertificates(context(control(soon)));
    expect(warn.status, warn.detail).toBe('warn');
    expect(warn.detail).toMatch(/expires in (9|10) days/);

    const fine = await issue('fine', new Date(now - DAY), new Date(now + 100 * DAY));
    chmodSync(fine.key, 0o644);
    const loose = await checkControlCertificates(context(control(fine)));
    expect(loose.status).toBe('warn');
    expect(loose.detail).toContain('mode 0644; expected 0600');
  });
});
