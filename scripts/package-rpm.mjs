/**
 * The .rpm of the launcher, from the tree scripts/package-deb.mjs staged (the
 * same files, modes, unit, configuration and maintainer scripts as the .deb;
 * see adr/0005-packaging-and-service.md). Built with rpmbuild (Debian's `rpm`
 * package: apt-get install rpm). Called by package-deb.mjs (`npm run package`,
 * `--formats deb,rpm`); not a command of its own.
 *
 * Differences from the .deb, each forced by the RPM world:
 *   - the unit goes to /usr/lib/systemd/system (on Fedora/RHEL /lib is a symlink
 *     owned by the `filesystem` package, which a package may not ship files under);
 *   - Requires come from rpm's own ELF dependency generator (sonames with symbol
 *     versions, e.g. libc.so.6(GLIBC_2.34)(64bit)); the package provides nothing
 *     automatically (the bundled node and addons are private);
 *   - the Debian maintainer scripts run as scriptlets, mapped by rpm's $1 (the
 *     number of versions installed after the operation):
 *       %pre    $1 >= 2 (upgrade)  prerm upgrade       stop before new files land, remember if it ran
 *       %post   $1 == 1 / >= 2     postinst configure [upgrade]
 *       %preun  $1 == 0 (erase)    prerm remove
 *       %postun $1 == 0 (erase)    postrm remove       (rpm has no purge: state is kept)
 *     The old version's %preun/%postun during an upgrade ($1 >= 1) do nothing:
 *     rpm runs them after the new %post, when stopping would undo the restart.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class RpmError extends Error {}

/** semver → rpm version: no '-' allowed; '~' sorts a prerelease before the release ("1.0.0-rc.1" → "1.0.0~rc.1"). */
export function rpmVersion(version) {
  const v = version.replace(/-/, '~');
  if (!/^[0-9][A-Za-z0-9.+~]*$/.test(v))
    throw new RpmError(`package.json version ${JSON.stringify(version)} does not map to an rpm version`);
  return v;
}

/** A spec file's literal text: rpm expands macros in scriptlets, so every % is doubled. */
const literal = (text) => text.replaceAll('%', '%%');

/** One scriptlet: a guard on rpm's $1, the Debian arguments, then the Debian script itself. */
function scriptlet(guard, args, script) {
  return `${guard}\nset -- ${args}\n${literal(script)}`;
}

export const UNIT_DIR = '/usr/lib/systemd/system';

function spec({ name, version, summary, description, license, stage, scripts }) {
  return `Name: ${name}
Version: ${version}
Release: 1
Summary: ${summary}
License: ${license}
AutoProv: no
AutoReq: yes
Recommends: osquery

%description
${literal(description)}

%install
cp -a '${stage}/.' '%{buildroot}/'
rm -rf '%{buildroot}/DEBIAN'
mkdir -p '%{buildroot}${UNIT_DIR}'
mv '%{buildroot}/lib/systemd/system/${name}.service' '%{buildroot}${UNIT_DIR}/'
rm -rf '%{buildroot}/lib'

%pre
${scriptlet('[ "$1" -ge 2 ] || exit 0', 'upgrade', scripts.prerm)}
%post
${scriptlet('if [ "$1" -ge 2 ]; then upgrade=rpm-upgrade; else upgrade=; fi', 'configure $upgrade', scripts.postinst)}
%preun
${scriptlet('[ "$1" -eq 0 ] || exit 0', 'remove', scripts.prerm)}
%postun
${scriptlet('[ "$1" -eq 0 ] || exit 0', 'remove', scripts.postrm)}
%files
%defattr(-,root,root,-)
/usr/bin/launcher
${UNIT_DIR}/${name}.service
/opt/${name}
%dir /etc/${name}
%dir %attr(0700,root,root) /etc/${name}/secrets
%dir %attr(0700,root,root) /etc/${name}/control
%config(noreplace) %attr(0640,root,root) /etc/${name}/launcher.yaml
%dir %attr(0700,root,root) /var/lib/${name}
/usr/share/doc/${name}
`;
}

/**
 * Build `<out>/<name>-<version>-1.<arch>.rpm` from the staged root `stage`
 * (without its DEBIAN/). Returns the path and the Requires rpm computed.
 */
export function buildRpm({ stage, workDir, out, name, version, summary, description, license, packaging, epoch, rpmbuild }) {
  const top = join(workDir, 'rpm');
  for (const d of ['SPECS', 'BUILD', 'BUILDROOT', 'RPMS', 'SOURCES', 'SRPMS']) mkdirSync(join(top, d), { recursive: true });
  const scripts = Object.fromEntries(['postinst', 'prerm', 'postrm'].map((s) => [s, readFileSync(join(packaging, 'debian', s), 'utf8')]));
  const rv = rpmVersion(version);
  const specPath = join(top, 'SPECS', `${name}.spec`);
  writeFileSync(specPath, spec({ name, version: rv, summary, description, license, stage, scripts }));
  const defines = {
    _topdir: top,
    _rpmdir: out,
    _rpmfilename: '%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm',
    _buildhost: 'osquery-launcher-build',
    // No stripping, no debuginfo, no /usr/lib/.build-id links: node and the addon ship as built.
    __os_install_post: '%{nil}',
    debug_package: '%{nil}',
    _build_id_links: 'none',
    // gzip: xz on node alone takes minutes on a 2-core host (as for the .deb).
    _binary_payload: 'w6.gzdio',
    use_source_date_epoch_as_buildtime: '1',
    clamp_mtime_to_source_date_epoch: '1',
    // rpmbuild's own database is irrelevant here; keep it out of the host's.
    _dbpath: join(top, 'db'),
  };
  const args = ['-bb', '--quiet', ...Object.entries(defines).flatMap(([k, v]) => ['--define', `${k} ${v}`]), specPath];
  const r = spawnSync(rpmbuild, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, SOURCE_DATE_EPOCH: epoch } });
  if (r.error) throw new RpmError(`rpmbuild: ${r.error.message}`);
  if (r.status !== 0) throw new RpmError(`rpmbuild exited with ${r.status ?? r.signal}:\n${(r.stderr || r.stdout || '').trim()}`);
  const arch = spawnSync(rpmbuild, ['--eval', '%{_arch}'], { encoding: 'utf8' }).stdout.trim();
  return { rpm: join(out, `${name}-${rv}-1.${arch}.rpm`), rpmArchitecture: arch };
}
