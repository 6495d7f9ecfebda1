// Issue 20: the .rpm. Built once from the same staged tree as the .deb (scripts/package-deb.mjs
// --formats rpm, as `npm run package` does with both), inspected with rpm -qp, installed with
// `rpm --root --dbpath -i --nodeps` into a temporary root that holds just enough of a system
// (sh, coreutils, the shared libraries of node) for rpm to run the scriptlets inside it, the
// packaged launcher run there, then erased.
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackages, danglingLinks, packageBuildBlocker, REPO, which } from './support.js';

const RPMBUILD = which('rpmbuild');
const RPM = which('rpm');
const blocker = packageBuildBlocker() ?? (!RPMBUILD || !RPM ? 'rpmbuild not installed (apt-get install rpm)' : undefined);
if (blocker) process.stderr.write(`test/packaging: skipping the rpm tests: ${blocker}\n`);
const CHROOT = which('chroot');
const asRoot = process.getuid?.() === 0;
if (!blocker && (!asRoot || !CHROOT))
  process.stderr.write('test/packaging: not root (or no chroot): the rpm is not installed into a temporary root\n');

const PKG = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
const NAME = 'osquery-launcher';
const PREFIX = `/opt/${NAME}`;

let tmp = '';
let rpmFile = '';

interface FileEntry {
  perms: string;
  owner: string;
  flags: string;
}
let files = new Map<string, FileEntry>();

function rpmQuery(args: string[]) {
  return execa(RPM!, ['-qp', ...args, rpmFile], { maxBuffer: 64 * 1024 * 1024, reject: false });
}

/**
 * Copy `programs` and every shared library they load (per ldd) to the same paths under
 * `root`, so that `chroot root` can run them. Programs land in root/bin under their name.
 * Also the least of a system the scriptlets need: root in passwd/group, /dev/null, /tmp.
 * Returns why the root cannot be made (no mknod here), or undefined.
 */
function provision(root: string, programs: Record<string, string>, libsOf: string[]): string | undefined {
  for (const d of ['bin', 'etc', 'dev', 'tmp']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  const null_ = spawnSync('mknod', ['-m', '666', join(root, 'dev/null'), 'c', '1', '3'], { encoding: 'utf8' });
  if (null_.status !== 0) return `mknod ${join(root, 'dev/null')} failed: ${null_.stderr.trim()}`;
  const libs = new Set<string>();
  for (const [name, path] of Object.entries(programs)) {
    copyFileSync(realpathSync(path), join(root, 'bin', name));
    chmodSync(join(root, 'bin', name), 0o755);
    libsOf.push(path);
  }
  for (const elf of libsOf) {
    const out = spawnSync('ldd', [elf], { encoding: 'utf8' }).stdout;
    for (const m of out.matchAll(/=>\s+(\/\S+)/g)) libs.add(m[1]!);
    for (const m of out.matchAll(/^\s+(\/\S+)\s+\(/gm)) libs.add(m[1]!);
  }
  for (const lib of libs) {
    mkdirSync(join(root, dirname(lib)), { recursive: true });
    copyFileSync(realpathSync(lib), join(root, lib));
  }
  return undefined;
}

describe.skipIf(blocker !== undefined)('RPM package', () => {
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'pkr-'));
    rpmFile = (await buildPackages(tmp, 'rpm')).rpm!;
    const listing = await rpmQuery(['--qf', '[%{FILEMODES:perms}|%{FILEUSERNAME}:%{FILEGROUPNAME}|%{FILEFLAGS:fflags}|%{FILENAMES}\n]']);
    expect(listing.exitCode, listing.stderr).toBe(0);
    files = new Map(
      listing.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [perms, owner, flags, ...rest] = line.split('|');
          return [rest.join('|'), { perms: perms!, owner: owner!, flags: flags! }];
        }),
    );
  }, 300_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('is named and versioned like the .deb, requires the sonames of node and the addon, provides nothing else, recommends osquery', async () => {
    expect(rpmFile).toMatch(new RegExp(`/${NAME}-${PKG.version.replace(/-/, '~')}-1\\.[a-z0-9_]+\\.rpm$`));
    const info = (await rpmQuery(['--qf', '%{NAME} %{VERSION} %{RELEASE} %{LICENSE}\n'])).stdout.trim();
    expect(info).toBe(`${NAME} ${PKG.version.replace(/-/, '~')} 1 Apache-2.0`);
    const requires = (await rpmQuery(['--requires'])).stdout.split('\n');
    for (const soname of ['libc.so.6()(64bit)', 'libstdc++.so.6()(64bit)', 'libgcc_s.so.1()(64bit)'])
      expect(requires, soname).toContain(soname);
    const provides = (await rpmQuery(['--provides'])).stdout.trim().split('\n');
    expect(
      provides.every((p) => p.startsWith(`${NAME} `) || p.startsWith(`${NAME}(`)),
      provides.join('\n'),
    ).toBe(true);
    expect((await rpmQuery(['--recommends'])).stdout.trim()).toBe('osquery');
  });

  it('lists the .deb tree (unit under /usr/lib/systemd/system), root-owned, tight modes, launcher.yaml %config(noreplace)', async () => {
    const ls = (await rpmQuery(['-l'])).stdout.split('\n');
    for (const f of [
      '/usr/bin/launcher',
      `${PREFIX}/node/bin/node`,
      `${PREFIX}/bin/osqueryd-sim`,
      `${PREFIX}/app/bin/launcher`,
      `${PREFIX}/app/dist/src/cli/main.js`,
      `${PREFIX}/app/proto/launcher/v1/launcher.proto`,
      `${PREFIX}/app/node_modules/better-sqlite3/build/Release/better_sqlite3.node`,
      `/usr/lib/systemd/system/${NAME}.service`,
      `/etc/${NAME}/launcher.yaml`,
      `/var/lib/${NAME}`,
      `/usr/share/doc/${NAME}/copyright`,
    ]) {
      expect(ls, f).toContain(f);
    }
    expect(ls.filter((p) => p.startsWith('/lib/') || p.startsWith('/usr/lib/.build-id') || p.startsWith('/DEBIAN'))).toEqual([]);
    expect(
      ls.filter((p) => p.startsWith(`${PREFIX}/app/node_modules/typescript/`) || p.startsWith(`${PREFIX}/app/node_modules/vitest/`)),
    ).toEqual([]);
    // Only the package's own directories: never /usr, /etc, /opt themselves.
    for (const shared of ['/usr', '/usr/bin', '/etc', '/opt', '/var', '/var/lib', '/usr/lib/systemd/system'])
      expect(ls, shared).not.toContain(shared);
    for (const [path, e] of files) expect(e.owner, path).toBe('root:root');
    const perms = (p: string) => files.get(p)?.perms;
    expect(perms('/usr/bin/launcher')).toBe('-rwxr-xr-x');
    expect(perms(`${PREFIX}/node/bin/node`)).toBe('-rwxr-xr-x');
    expect(perms(`/usr/lib/systemd/system/${NAME}.service`)).toBe('-rw-r--r--');
    expect(perms(`/etc/${NAME}/launcher.yaml`)).toBe('-rw-r-----');
    expect(perms(`/etc/${NAME}/secrets`)).toBe('drwx------');
    expect(perms(`/etc/${NAME}/control`)).toBe('drwx------');
    expect(perms(`/var/lib/${NAME}`)).toBe('drwx------');
    expect(files.get(`/etc/${NAME}/launcher.yaml`)?.flags).toBe('cn');
    expect((await rpmQuery(['-c'])).stdout.trim()).toBe(`/etc/${NAME}/launcher.yaml`);
    expect([...files.values()].filter((e) => e.flags.includes('c'))).toHaveLength(1);
  });

  it("maps rpm scriptlets onto the Debian maintainer scripts, by rpm's $1", async () => {
    const scripts = (await rpmQuery(['--scripts'])).stdout;
    for (const header of ['preinstall scriptlet', 'postinstall scriptlet', 'preuninstall scriptlet', 'postuninstall scriptlet'])
      expect(scripts, header).toContain(header);
    const tag = async (t: string) => (await rpmQuery(['--qf', `%{${t}}`])).stdout;
    const pre = await tag('PREIN');
    const post = await tag('POSTIN');
    const preun = await tag('PREUN');
    const postun = await tag('POSTUN');
    expect(pre.startsWith('[ "$1" -ge 2 ] || exit 0\nset -- upgrade\n')).toBe(true);
    expect(post).toMatch(/^if \[ "\$1" -ge 2 \]; then upgrade=rpm-upgrade; else upgrade=; fi\nset -- configure \$upgrade\n/);
    expect(preun.startsWith('[ "$1" -eq 0 ] || exit 0\nset -- remove\n')).toBe(true);
    expect(postun.startsWith('[ "$1" -eq 0 ] || exit 0\nset -- remove\n')).toBe(true);
    // The bodies are the Debian scripts verbatim (a % survived the spec's macro expansion).
    expect(post).toContain(readFileSync(join(REPO, 'packaging/debian/postinst'), 'utf8').trimEnd());
    expect(preun).toContain(readFileSync(join(REPO, 'packaging/debian/prerm'), 'utf8').trimEnd());
    expect(postun).toContain(readFileSync(join(REPO, 'packaging/debian/postrm'), 'utf8').trimEnd());
    for (const s of [pre, post, preun, postun]) expect(spawnSync('sh', ['-n'], { input: s }).status).toBe(0);
  });

  it.skipIf(!asRoot || !CHROOT)(
    'installs into a temporary root (rpm runs %pre/%post there), runs the packaged launcher --version and doctor in it, and erases it',
    async (ctx) => {
      const root = join(tmp, 'root');
      const tools = Object.fromEntries(['install', 'cat', 'chmod', 'rm', 'mkdir'].map((t) => [t, which(t)!]));
      const cannot = provision(root, { sh: '/bin/sh', ...tools }, [process.execPath]);
      if (cannot) return ctx.skip(cannot);
      const rpmIn = (...args: string[]) =>
        execa(RPM!, ['--root', root, '--dbpath', '/rpmdb', ...args], {
          reject: false,
          timeout: 120_000,
          env: { PATH: process.env.PATH! },
          extendEnv: false,
        });

      const installed = await rpmIn('-i', '--nodeps', rpmFile);
      expect(installed.exitCode, installed.stderr).toBe(0);
      expect((await rpmIn('-q', NAME)).stdout.trim()).toBe(`${NAME}-${PKG.version.replace(/-/, '~')}-1.${rpmFile.split('.').at(-2)}`);
      expect(statSync(join(root, 'var/lib', NAME)).mode & 0o777).toBe(0o700);
      expect(danglingLinks(join(root, 'opt'))).toEqual([]);
      // %post ran inside the root: control certificates, and the first install recorded as enabled (no systemctl there).
      expect(statSync(join(root, 'etc', NAME, 'control/ca.key')).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(root, 'var/lib', NAME, '.package-unit-state'), 'utf8')).toBe('enabled\n');

      const inRoot = (...args: string[]) =>
        execa(CHROOT!, [root, '/usr/bin/launcher', ...args], {
          reject: false,
          timeout: 60_000,
          env: { PATH: '/bin:/usr/bin' },
          extendEnv: false,
        });
      const version = await inRoot('--version');
      expect(version.exitCode, version.stderr).toBe(0);
      // The first line names the version; build information follows (issue 21), the commit recorded at build time.
      expect(version.stdout.split('\n')[0]).toBe(`osquery-launcher ${PKG.version}`);
      expect(version.stdout).toMatch(/^\s+commit\s+(?!unknown)\S+/m);
      // doctor with the packaged configuration, inside the root: the packaged parts check out;
      // osqueryd is not installed there and the device server URL is a placeholder.
      const doc = await inRoot('doctor', '--json', '--timeout-ms', '2000');
      const report = JSON.parse(doc.stdout) as { config?: string; checks: { name: string; status: string; detail: string }[] };
      const check = (n: string) => report.checks.find((c) => c.name === n);
      expect(report.config).toBe(`/etc/${NAME}/launcher.yaml`);
      for (const n of ['config', 'root directory', 'control certificates', 'service'])
        expect(check(n)?.status, `${n}: ${check(n)?.detail}`).toBe('pass');
      expect(check('osqueryd')?.status).toBe('fail');

      // An edited config survives an erase as .rpmsave (%config(noreplace)); state is kept, like dpkg's remove.
      writeFileSync(
        join(root, 'etc', NAME, 'launcher.yaml'),
        `${readFileSync(join(root, 'etc', NAME, 'launcher.yaml'), 'utf8')}# edited\n`,
      );
      const erased = await rpmIn('-e', NAME);
      expect(erased.exitCode, erased.stderr).toBe(0);
      expect((await rpmIn('-q', NAME)).exitCode).not.toBe(0);
      for (const gone of ['usr/bin/launcher', `opt/${NAME}`, `usr/lib/systemd/system/${NAME}.service`, `etc/${NAME}/launcher.yaml`])
        expect(existsSync(join(root, gone)), gone).toBe(false);
      expect(readFileSync(join(root, 'etc', NAME, 'launcher.yaml.rpmsave'), 'utf8')).toContain('# edited');
      expect(existsSync(join(root, 'etc', NAME, 'control/ca.pem'))).toBe(true);
    },
    180_000,
  );
});
