#!/usr/bin/env node
/**
 * `npm run package`: build the Debian package of the launcher, and the .rpm
 * from the same staged tree (scripts/package-rpm.mjs), from the built tree
 * (run `npm run build` first; the npm script does).
 *
 *   node scripts/package-deb.mjs [--out DIR] [--work DIR] [--keep] [--formats deb,rpm]
 *        [--compress gzip|xz|zstd|none] [--level N] [--node PATH] [--json]
 *
 * Output: <out>/osquery-launcher_<version>_<arch>.deb and
 * <out>/osquery-launcher-<version>-1.<arch>.rpm (default out: dist/).
 * --formats picks which (default both; the .rpm needs rpmbuild: apt-get install rpm).
 * Environment: SOURCE_DATE_EPOCH (default: time of the last commit),
 * DEB_MAINTAINER ("Name <mail>" for the Maintainer field).
 * Needs dpkg-deb; uses dpkg-shlibdeps (dpkg-dev) for Depends when present.
 *
 * Layout of the package (see adr/0005-packaging-and-service.md):
 *   /opt/osquery-launcher/node/bin/node       the Node.js runtime this script runs on (process.execPath)
 *   /opt/osquery-launcher/app/                package.json, bin/, dist/{src,extensions}, proto/launcher/v1,
 *                                             production node_modules (dev dependencies pruned)
 *   /opt/osquery-launcher/bin/osqueryd-sim    the stand-in, with the bundled node (demos, smoke tests)
 *   /usr/bin/launcher                         wrapper: exec bundled node on app/bin/launcher
 *   /lib/systemd/system/osquery-launcher.service
 *   /etc/osquery-launcher/launcher.yaml       conffile (0640); secrets/ and control/ 0700
 *   /var/lib/osquery-launcher                 state, 0700
 *   /usr/share/doc/osquery-launcher/          copyright, examples/launcher.example.yaml
 *
 * The production node_modules come from the work tree's node_modules, never
 * modified: packages the lockfile marks dev-only are not copied, then
 * `npm prune --omit=dev --ignore-scripts --offline` runs in the staging copy
 * (no network, no recompilation of better-sqlite3, whose compiled addon must
 * match the bundled node, which it does: it was built for this node).
 *
 * Reproducibility: file modes are normalised, owners are root (dpkg-deb
 * --root-owner-group), and SOURCE_DATE_EPOCH (default: the last commit's
 * time) fixes the archive timestamps and clamps file mtimes.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  closeSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildRpm, RpmError } from './package-rpm.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGING = join(REPO, 'packaging');
const NAME = 'osquery-launcher';
const PREFIX = `/opt/${NAME}`;

class PackageError extends Error {}

function fail(message) {
  throw new PackageError(message);
}

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const p = join(dir, cmd);
    try {
      if (lstatSync(p).isFile() || lstatSync(p).isSymbolicLink()) return p;
    } catch {
      // next
    }
  }
  return undefined;
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (r.error) fail(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}:\n${(r.stderr || r.stdout || '').trim()}`);
  return r.stdout;
}

/** Every path under `dir` (files, dirs, symlinks), depth first, sorted. */
function walk(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    out.push(p);
    const st = lstatSync(p);
    if (st.isDirectory()) walk(p, out);
  }
  return out;
}

/** semver → Debian version: a prerelease sorts before the release ("1.0.0-rc.1" → "1.0.0~rc.1"). */
export function debianVersion(version) {
  const v = version.replace(/-/, '~');
  if (!/^[0-9][A-Za-z0-9.+~]*$/.test(v)) fail(`package.json version ${JSON.stringify(version)} does not map to a Debian version`);
  return v;
}

function sourceDateEpoch() {
  if (process.env.SOURCE_DATE_EPOCH && /^\d+$/.test(process.env.SOURCE_DATE_EPOCH)) return process.env.SOURCE_DATE_EPOCH;
  const r = spawnSync('git', ['-C', REPO, 'log', '-1', '--format=%ct'], { encoding: 'utf8' });
  if (r.status === 0 && /^\d+\s*$/.test(r.stdout)) return r.stdout.trim();
  return String(Math.floor(Date.now() / 1000));
}

/** Lockfile paths ("node_modules/x", "node_modules/a/node_modules/b") of dev-only packages. */
function devOnlyPackages(lockPath) {
  const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
  return new Set(
    Object.entries(lock.packages ?? {})
      .filter(([key, p]) => key !== '' && p.dev === true)
      .map(([key]) => key),
  );
}

/** Remove directories left empty (scopes whose packages were all dev-only). */
function removeEmptyDirs(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (lstatSync(p).isDirectory()) removeEmptyDirs(p);
  }
  if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
}

/** Copy the production part of node_modules (a superset of it: npm prune finishes the job). */
function copyNodeModules(appDir) {
  const src = join(REPO, 'node_modules');
  if (!existsSync(src)) fail(`${src} is missing: run npm ci first`);
  const dev = devOnlyPackages(join(REPO, 'package-lock.json'));
  cpSync(src, join(appDir, 'node_modules'), {
    recursive: true,
    verbatimSymlinks: true,
    preserveTimestamps: true,
    filter: (from) => {
      const rel = relative(REPO, from).split(sep).join('/');
      return !dev.has(rel) && rel !== 'node_modules/.cache' && rel !== 'node_modules/.vite';
    },
  });
  const npm = which('npm') ?? join(dirname(process.execPath), 'npm');
  run(npm, ['prune', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--offline', '--loglevel=error'], { cwd: appDir });
  removeDanglingLinks(join(appDir, 'node_modules'));
  removeEmptyDirs(join(appDir, 'node_modules'));
  // better-sqlite3: keep the compiled addon, drop the SQLite sources and build intermediates (~25 MB).
  const bs = join(appDir, 'node_modules', 'better-sqlite3');
  const addon = join(bs, 'build', 'Release', 'better_sqlite3.node');
  if (!existsSync(addon)) fail(`${addon} is missing: better-sqlite3 was not built (npm ci runs its install script)`);
  const keep = join(bs, 'better_sqlite3.node.keep');
  copyFileSync(addon, keep);
  for (const d of ['build', 'deps', 'src']) rmSync(join(bs, d), { recursive: true, force: true });
  mkdirSync(join(bs, 'build', 'Release'), { recursive: true });
  copyFileSync(keep, addon);
  rmSync(keep);
}

/**
 * Remove symlinks whose target does not exist (node_modules/.bin links to pruned dev
 * tools: tsc, vitest, ...); returns the removed paths. A package must carry no dangling link.
 */
function removeDanglingLinks(dir) {
  const removed = [];
  for (const path of walk(dir)) {
    if (!lstatSync(path).isSymbolicLink() || existsSync(path)) continue;
    rmSync(path);
    removed.push(path);
  }
  return removed;
}

/**
 * Copy a built directory without source maps. Timestamps are kept: bin/launcher runs dist/src/bundle only when it
 * is not older than dist/src/cli/main.js (scripts/bundle.mjs).
 */
function copyBuilt(from, to) {
  cpSync(from, to, { recursive: true, preserveTimestamps: true, filter: (p) => !p.endsWith('.map') });
}

function isElf(path) {
  const st = lstatSync(path);
  if (!st.isFile() || st.size < 4) return false;
  const head = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  return head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
}

/** Depends: for the ELF files (node, native addons), from dpkg-shlibdeps, else ldd + dpkg -S. */
function computeDepends(workDir, pkgRoot, elfs) {
  if (which('dpkg-shlibdeps')) {
    const out = run('dpkg-shlibdeps', ['-O', '--warnings=0', ...elfs.map((e) => `-e${relative(workDir, e)}`)], { cwd: workDir });
    const m = /^shlibs:Depends=(.*)$/m.exec(out);
    if (m?.[1].trim()) return { depends: m[1].trim(), via: 'dpkg-shlibdeps' };
  }
  const libs = new Set();
  for (const elf of elfs) {
    const out = run('ldd', [elf]);
    for (const m of out.matchAll(/=>\s+(\/\S+)/g)) libs.add(m[1]);
    for (const m of out.matchAll(/^\s+(\/\S+)\s+\(/gm)) libs.add(m[1]);
  }
  const pkgs = new Set();
  for (const lib of libs) {
    if (lib.startsWith(pkgRoot)) continue;
    const r = spawnSync('dpkg', ['-S', lib], { encoding: 'utf8' });
    const real = r.status === 0 ? r.stdout : spawnSync('dpkg', ['-S', lib.replace(/^\/lib/, '/usr/lib')], { encoding: 'utf8' }).stdout;
    const pkg = /^([^:\s,]+)(?::[a-z0-9]+)?:\s/m.exec(real ?? '')?.[1];
    if (!pkg) fail(`cannot tell which package provides ${lib} (needed by the bundled binaries)`);
    pkgs.add(pkg);
  }
  return { depends: [...pkgs].sort().join(', '), via: 'ldd + dpkg -S (no version constraints)' };
}

function controlFile(fields) {
  const lines = Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}: ${v}`);
  return `${lines.join('\n')}\n`;
}

const DESCRIPTION = `supervisor keeping osqueryd alive for a vendor and its tenants
 osquery-launcher keeps one osqueryd per registration (the vendor plus one
 per tenant) alive, each with its own kolide_grpc extension, and shares one
 JSON-RPC client to the device server between them. It runs as the systemd
 service osquery-launcher; \`launcher doctor\` checks a host, \`launcher ctl\`
 talks to the running service over mutual TLS.
 .
 The package bundles the Node.js runtime it was built with, so it neither
 needs nor uses a system Node.js. osquery itself is a separate package.`;

export function buildPackage(options = {}) {
  const started = Date.now();
  const out = resolve(options.out ?? join(REPO, 'dist'));
  const nodeBinary = resolve(options.node ?? process.execPath);
  const compress = options.compress ?? 'gzip';
  if (!['gzip', 'xz', 'zstd', 'none'].includes(compress)) fail(`--compress ${compress}: expected gzip, xz, zstd or none`);
  const formats = (options.formats ?? 'deb,rpm').split(',').map((f) => f.trim());
  if (formats.length === 0 || formats.some((f) => f !== 'deb' && f !== 'rpm'))
    fail(`--formats ${options.formats}: expected a comma-separated list of deb and rpm`);
  for (const cmd of ['dpkg-deb', 'dpkg']) if (!which(cmd)) fail(`${cmd} not found: install dpkg (apt-get install dpkg)`);
  const rpmbuild = formats.includes('rpm') ? which('rpmbuild') : undefined;
  if (formats.includes('rpm') && !rpmbuild)
    fail('rpmbuild not found: install it (apt-get install rpm) or build only the .deb with --formats deb');
  for (const f of [
    'package.json',
    'package-lock.json',
    'bin/launcher',
    'bin/osqueryd-sim',
    'dist/src/cli/main.js',
    'proto/launcher/v1/launcher.proto',
  ]) {
    if (!existsSync(join(REPO, f))) fail(`${join(REPO, f)} is missing${f.startsWith('dist/') ? ': run `npm run build` first' : ''}`);
  }
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  const version = debianVersion(pkg.version);
  const arch = run('dpkg', ['--print-architecture']).trim();
  const epoch = sourceDateEpoch();

  const workDir = options.work ? resolve(options.work) : mkdtempSync(join(tmpdir(), 'olpkg-'));
  const pkgRoot = join(workDir, 'debian', NAME);
  rmSync(pkgRoot, { recursive: true, force: true });
  mkdirSync(pkgRoot, { recursive: true });
  // dpkg-shlibdeps wants debian/control in its working directory.
  writeFileSync(join(workDir, 'debian', 'control'), `Source: ${NAME}\n\nPackage: ${NAME}\nArchitecture: any\n`);
  try {
    const p = (...parts) => join(pkgRoot, ...parts);
    const app = p(PREFIX, 'app');

    // The application.
    mkdirSync(join(app, 'bin'), { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(REPO, f), join(app, f));
    for (const f of ['launcher', 'osqueryd-sim']) copyFileSync(join(REPO, 'bin', f), join(app, 'bin', f));
    copyBuilt(join(REPO, 'dist', 'src'), join(app, 'dist', 'src'));
    if (existsSync(join(REPO, 'dist', 'extensions'))) copyBuilt(join(REPO, 'dist', 'extensions'), join(app, 'dist', 'extensions'));
    // What `launcher --version` reports as commit and build date (written by `npm run build`).
    if (existsSync(join(REPO, 'dist', 'build-info.json')))
      copyFileSync(join(REPO, 'dist', 'build-info.json'), join(app, 'dist', 'build-info.json'));
    cpSync(join(REPO, 'proto', 'launcher', 'v1'), join(app, 'proto', 'launcher', 'v1'), { recursive: true });
    copyNodeModules(app);
    rmSync(join(app, 'package-lock.json')); // node_modules/.package-lock.json records what is shipped

    // The runtime.
    mkdirSync(p(PREFIX, 'node', 'bin'), { recursive: true });
    copyFileSync(nodeBinary, p(PREFIX, 'node', 'bin', 'node'));
    const nodeLicense = [
      join(dirname(nodeBinary), '..', 'share', 'doc', 'nodejs', 'LICENSE'),
      join(dirname(nodeBinary), '..', 'share', 'doc', 'node', 'LICENSE'),
      join(dirname(nodeBinary), '..', 'LICENSE'),
    ].find(existsSync);
    if (nodeLicense) copyFileSync(nodeLicense, p(PREFIX, 'node', 'LICENSE'));

    // Commands, service, configuration, state, documentation.
    mkdirSync(p('usr', 'bin'), { recursive: true });
    copyFileSync(join(PACKAGING, 'launcher.sh'), p('usr', 'bin', 'launcher'));
    mkdirSync(p(PREFIX, 'bin'), { recursive: true });
    copyFileSync(join(PACKAGING, 'osqueryd-sim.sh'), p(PREFIX, 'bin', 'osqueryd-sim'));
    mkdirSync(p('lib', 'systemd', 'system'), { recursive: true });
    copyFileSync(join(PACKAGING, `${NAME}.service`), p('lib', 'systemd', 'system', `${NAME}.service`));
    for (const d of [p('etc', NAME, 'secrets'), p('etc', NAME, 'control'), p('var', 'lib', NAME)]) mkdirSync(d, { recursive: true });
    copyFileSync(join(PACKAGING, 'launcher.yaml'), p('etc', NAME, 'launcher.yaml'));
    mkdirSync(p('usr', 'share', 'doc', NAME, 'examples'), { recursive: true });
    copyFileSync(join(PACKAGING, 'copyright'), p('usr', 'share', 'doc', NAME, 'copyright'));
    copyFileSync(join(REPO, 'config', 'launcher.example.yaml'), p('usr', 'share', 'doc', NAME, 'examples', 'launcher.example.yaml'));

    // Modes: normalised (the build host's umask must not leak in), then the tight ones.
    for (const path of walk(pkgRoot)) {
      const st = lstatSync(path);
      if (st.isSymbolicLink()) continue;
      chmodSync(path, st.isDirectory() || (st.mode & 0o111) !== 0 ? 0o755 : 0o644);
    }
    for (const f of [
      p('usr', 'bin', 'launcher'),
      p(PREFIX, 'bin', 'osqueryd-sim'),
      p(PREFIX, 'node', 'bin', 'node'),
      join(app, 'bin', 'launcher'),
      join(app, 'bin', 'osqueryd-sim'),
    ])
      chmodSync(f, 0o755);
    for (const d of [p('etc', NAME, 'secrets'), p('etc', NAME, 'control'), p('var', 'lib', NAME)]) chmodSync(d, 0o700);
    chmodSync(p('etc', NAME, 'launcher.yaml'), 0o640);

    // Smoke test of the staged tree with the staged runtime, before anything is archived.
    const stagedNode = p(PREFIX, 'node', 'bin', 'node');
    const said = run(stagedNode, [join(app, 'bin', 'launcher'), '--version'], {
      cwd: workDir,
      env: { PATH: '/nonexistent', HOME: workDir },
    }).trim();
    if (!said.includes(pkg.version)) fail(`the staged launcher printed ${JSON.stringify(said)}, expected version ${pkg.version}`);
    run(
      stagedNode,
      ['-e', `new (require(${JSON.stringify(join(app, 'node_modules', 'better-sqlite3'))}))(':memory:').prepare('select 1').get()`],
      { cwd: workDir, env: { PATH: '/nonexistent' } },
    );

    const dangling = walk(pkgRoot).filter((f) => lstatSync(f).isSymbolicLink() && !existsSync(f));
    if (dangling.length > 0) fail(`dangling symlinks in the staged package: ${dangling.map((d) => relative(pkgRoot, d)).join(', ')}`);
    mkdirSync(out, { recursive: true });
    const result = { version, sourceDateEpoch: Number(epoch) };
    if (rpmbuild) {
      Object.assign(
        result,
        buildRpm({
          stage: pkgRoot,
          workDir,
          out,
          name: NAME,
          version: pkg.version,
          summary: DESCRIPTION.split('\n')[0],
          description: DESCRIPTION.split('\n')
            .slice(1)
            .map((l) => (l === ' .' ? '' : l.slice(1)))
            .join('\n'),
          license: pkg.license,
          packaging: PACKAGING,
          epoch,
          rpmbuild,
        }),
      );
    }
    if (!formats.includes('deb'))
      return {
        ...result,
        seconds: Math.round((Date.now() - started) / 100) / 10,
        ...(options.keep || options.work ? { staging: pkgRoot } : {}),
      };

    // Control information.
    const elfs = walk(pkgRoot).filter((f) => (f.endsWith('.node') || f === stagedNode) && isElf(f));
    const { depends, via } = computeDepends(workDir, pkgRoot, elfs);
    const installedKiB = walk(pkgRoot).reduce((sum, f) => sum + Math.ceil(lstatSync(f).size / 1024), 0);
    const debian = p('DEBIAN');
    mkdirSync(debian, { recursive: true });
    writeFileSync(
      join(debian, 'control'),
      controlFile({
        Package: NAME,
        Version: version,
        Architecture: arch,
        Maintainer: process.env.DEB_MAINTAINER || 'osquery-launcher maintainers <maintainers@osquery-launcher.invalid>',
        'Installed-Size': String(installedKiB),
        Depends: depends,
        Recommends: 'osquery',
        Section: 'admin',
        Priority: 'optional',
        Description: DESCRIPTION,
      }),
    );
    const conffiles = [`/etc/${NAME}/launcher.yaml`];
    writeFileSync(join(debian, 'conffiles'), `${conffiles.join('\n')}\n`);
    for (const s of ['postinst', 'prerm', 'postrm']) {
      copyFileSync(join(PACKAGING, 'debian', s), join(debian, s));
      chmodSync(join(debian, s), 0o755);
    }
    const sums = walk(pkgRoot)
      .filter((f) => !f.startsWith(debian + sep) && f !== debian && lstatSync(f).isFile())
      .map((f) => `/${relative(pkgRoot, f).split(sep).join('/')}`)
      .filter((rel) => !conffiles.includes(rel))
      .map(
        (rel) =>
          `${createHash('md5')
            .update(readFileSync(join(pkgRoot, rel)))
            .digest('hex')}  ${rel.slice(1)}`,
      );
    writeFileSync(join(debian, 'md5sums'), `${sums.join('\n')}\n`);
    for (const f of readdirSync(debian)) if (!['postinst', 'prerm', 'postrm'].includes(f)) chmodSync(join(debian, f), 0o644);
    chmodSync(debian, 0o755);

    // The archive.
    const deb = join(out, `${NAME}_${version}_${arch}.deb`);
    const level = options.level ?? (compress === 'xz' ? 6 : compress === 'zstd' ? 3 : compress === 'gzip' ? 6 : 0);
    run('dpkg-deb', ['--root-owner-group', `-Z${compress}`, ...(compress === 'none' ? [] : [`-z${level}`]), '--build', pkgRoot, deb], {
      env: { ...process.env, SOURCE_DATE_EPOCH: epoch },
    });
    return {
      ...result,
      deb,
      architecture: arch,
      depends,
      dependsVia: via,
      installedSizeKiB: installedKiB,
      sourceDateEpoch: Number(epoch),
      seconds: Math.round((Date.now() - started) / 100) / 10,
      ...(options.keep || options.work ? { staging: pkgRoot } : {}),
    };
  } finally {
    if (!options.keep && !options.work) rmSync(workDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { values } = parseArgs({
      options: {
        out: { type: 'string' },
        work: { type: 'string' },
        keep: { type: 'boolean' },
        compress: { type: 'string' },
        level: { type: 'string' },
        node: { type: 'string' },
        json: { type: 'boolean' },
        formats: { type: 'string' },
      },
      strict: true,
    });
    const result = buildPackage({ ...values, ...(values.level !== undefined ? { level: Number(values.level) } : {}) });
    const human = [
      result.deb && `${result.deb}\n  Depends: ${result.depends}\n  ${result.installedSizeKiB} KiB installed`,
      result.rpm,
      `built in ${result.seconds} s`,
    ]
      .filter(Boolean)
      .join('\n');
    process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${human}\n`);
  } catch (err) {
    process.stderr.write(`package-deb: ${err instanceof PackageError || err instanceof RpmError ? err.message : (err?.stack ?? err)}\n`);
    process.exitCode = 1;
  }
}
