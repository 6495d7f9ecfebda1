/**
 * A tenant osqueryd's own view of the filesystem (issue 22, ADR 0016).
 *
 * With `isolation: filesystem`, osqueryd is started as
 *
 *   unshare --mount --propagation private -- sh -c '<mounts>; exec "$@"' olr-isolate <osqueryd> <args…>
 *
 * unshare(1) without --fork execs in place and `exec` in sh does too, so the
 * pid execa gets (and puts in its own process group, attaches to the cgroup,
 * signals on stop) is osqueryd's. Inside the new mount namespace, before
 * osqueryd runs, the script:
 *   - `cd`s into the supervisor's root, then mounts an empty tmpfs over it:
 *     the shell's working directory still is the covered directory, so
 *   - each path the instance needs (its registration directory with its
 *     database, the socket directory, the augeas lenses) is re-created in the
 *     tmpfs and bind-mounted back from `./<relative path>` (mount -c: no
 *     canonicalisation, which would resolve the path to the tmpfs);
 *   - covers `/etc/osquery-launcher` (and any other configured path) with an
 *     empty tmpfs;
 *   - execs osqueryd through
 *       setpriv --rgid <isolationGid(registration)> --keep-groups --bounding-set=-sys_ptrace
 *     (util-linux, also in place). Without CAP_SYS_PTRACE, osqueryd cannot
 *     walk `/proc/<pid>/root` (cwd, exe, fd links, mem) of the supervisor or
 *     any other process holding capabilities it lacks. The real gid, different
 *     from the effective gid 0, closes the same walk between two tenants, whose
 *     capability sets are equal: the kernel's ptrace access check only lets a
 *     caller without CAP_SYS_PTRACE in when its fsuid/fsgid equal all three of
 *     the target's uids and gids (a target whose real and effective gid differ
 *     never matches anybody's single fsgid), and an image exec'd with
 *     egid != rgid is non-dumpable. The uids stay 0 (osquery checks getuid()
 *     and geteuid(), and restores the real uid after dropping privileges), and
 *     the effective and saved gids stay 0 (ADR 0016 decision 6; kernel facts in docs/protocol/linux-isolation.md).
 * Bind mounts share inodes, so the Unix sockets in the socket directory work
 * between the supervisor (host namespace) and osqueryd. The rest of the host
 * is unchanged. Mounts are private: nothing propagates back to the host, and
 * the namespace goes away with its last process.
 *
 * Where the host cannot do it (not root, no unshare/mount, namespaces
 * refused, no setpriv giving exactly those credentials), the instance starts unwrapped and its status says
 * `isolation: unavailable` with the reason.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, sep } from 'node:path';
import type { IsolationSettings } from '../../registration.js';

export type IsolationMode = NonNullable<IsolationSettings['mode']>;

/** What is in force for a run: the mode asked for, or `unavailable` when filesystem isolation could not be set up. */
export type IsolationState = IsolationMode | 'unavailable';

/** Tables a tenant's osqueryd does without unless its registration says otherwise. */
export const DEFAULT_TENANT_DISABLED_TABLES: readonly string[] = ['curl', 'curl_certificate', 'carves'];
/** Host paths covered for every isolated instance, besides the supervisor's root. */
export const DEFAULT_COVERED_PATHS: readonly string[] = ['/etc/osquery-launcher'];

/** The settings in force for one registration. */
export interface ResolvedIsolation {
  mode: IsolationMode;
  disableTables: string[];
  /** `--disable_carver=true` (tenants). */
  disableCarver: boolean;
}

/** Tenants: filesystem isolation, the default denylist, no carver. The vendor: none of it. Explicit settings win. */
export function resolveIsolation(settings: IsolationSettings | undefined, isVendor: boolean): ResolvedIsolation {
  const mode = settings?.mode ?? (isVendor ? 'none' : 'filesystem');
  const disableTables = settings?.disableTables ?? (isVendor ? [] : [...DEFAULT_TENANT_DISABLED_TABLES]);
  return { mode, disableTables, disableCarver: !isVendor };
}

/** The osqueryd flags of the settings (placed in the command line's tail, after the registration's own flags). */
export function isolationFlags(r: ResolvedIsolation): string[] {
  const flags: string[] = [];
  if (r.disableTables.length > 0) flags.push(`--disable_tables=${r.disableTables.join(',')}`);
  if (r.disableCarver) flags.push('--disable_carver=true');
  return flags;
}

/**
 * The real gids isolated osqueryds run with (their effective and saved gids stay 0): one per registration,
 * isolationGid(). Any gid other than 0 makes the ptrace check fail between tenants as long as the real and
 * effective gids differ; a gid of its own per tenant keeps them apart even when something in the exec chain
 * sets every gid to the real one (dash and bash do that when started with rgid != egid, so an osqueryd that
 * is a shell wrapper ends with gids G,G,G and is dumpable again). The range lies between systemd's container
 * range (up to 0x6FFFFFFF) and its foreign range (0x7FFE0000): no account or service should use it. Files
 * osquery creates from a thread after it dropped and restored privileges (it restores to the real ids) get
 * this group.
 */
export const ISOLATION_GID_MIN = 0x70000000;
export const ISOLATION_GID_SPAN = 0x0ffe0000;

/** The real gid of a registration's isolated osqueryd: ISOLATION_GID_MIN + (first 32 bits of sha256(id)) mod span. */
export function isolationGid(registrationId: string): number {
  return ISOLATION_GID_MIN + (createHash('sha256').update(registrationId).digest().readUInt32BE(0) % ISOLATION_GID_SPAN);
}

/** CAP_SYS_PTRACE's bit in /proc/<pid>/status capability masks. */
const CAP_SYS_PTRACE_BIT = 19n;

export interface IsolationHost {
  /** Effective uid (default process.geteuid()). */
  euid?: number;
  /** Force unavailability with this reason (tests, or a config that turns the namespace off). */
  unavailableReason?: string;
  /** setpriv(1) to exec osqueryd through (default `setpriv` from PATH; tests point it elsewhere). */
  setpriv?: string;
}

let probedNamespace: string | null | undefined;
const probedSetpriv = new Map<string, string | null>();

/** The setpriv(1) options that start an isolated osqueryd with real gid `gid` (see the file comment). */
export function setprivArgs(gid: number): string[] {
  return ['--rgid', String(gid), '--keep-groups', '--bounding-set=-sys_ptrace'];
}

/**
 * Why setpriv cannot start osqueryd with the credentials isolation relies on, or undefined when it can.
 * Not trusted from its help text: it runs `setpriv <options> -- cat /proc/self/status` and checks that the
 * real gid is the one asked for (ISOLATION_GID_MIN) while the effective and saved gids and all uids stay 0, and that
 * CAP_SYS_PTRACE is out of the bounding set.
 */
function setprivReason(setpriv: string): string | undefined {
  let reason = probedSetpriv.get(setpriv);
  if (reason === undefined) {
    const r = spawnSync(setpriv, [...setprivArgs(ISOLATION_GID_MIN), '--', 'cat', '/proc/self/status'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 5000,
      encoding: 'utf8',
    });
    const status = r.stdout ?? '';
    const ids = (name: string) => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)?.[1]?.trim().split(/\s+/).join(' ');
    const bnd = /^CapBnd:\s+([0-9a-f]+)$/m.exec(status)?.[1];
    if (r.error)
      reason = `setpriv(1) cannot run (${r.error.message}): without it osqueryd keeps CAP_SYS_PTRACE and could walk /proc/<pid>/root into the host's view`;
    else if (r.status !== 0)
      reason = `setpriv ${setprivArgs(ISOLATION_GID_MIN).join(' ')} failed (${r.signal ?? `exit ${r.status}`}): ${String(r.stderr).trim().slice(0, 200)}`;
    else if (ids('Uid') !== '0 0 0 0' || ids('Gid') !== `${ISOLATION_GID_MIN} 0 0 0`)
      reason = `setpriv gave uids (real, effective, saved, fs) ${ids('Uid')} and gids ${ids('Gid')}, not real gid ${ISOLATION_GID_MIN} with every other id 0`;
    else if (!bnd || (BigInt(`0x${bnd}`) >> CAP_SYS_PTRACE_BIT) & 1n)
      reason = 'setpriv did not remove CAP_SYS_PTRACE from the bounding set';
    else reason = null;
    probedSetpriv.set(setpriv, reason);
  }
  return reason ?? undefined;
}

/**
 * Why this host cannot isolate a tenant's osqueryd, or undefined when it can. Probed once each: a private
 * mount namespace (`unshare -m true`), then the credentials setpriv gives osqueryd (setprivReason).
 */
export function isolationUnavailableReason(host: IsolationHost = {}): string | undefined {
  if (host.unavailableReason) return host.unavailableReason;
  const euid = host.euid ?? process.geteuid?.();
  if (euid !== 0) return `mount namespaces need root; the supervisor runs as uid ${euid ?? 'unknown'}`;
  if (probedNamespace === undefined) {
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'true'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5000 });
    if (r.error) probedNamespace = `unshare(1) cannot run: ${r.error.message}`;
    else if (r.status !== 0)
      probedNamespace = `unshare --mount failed (${r.signal ?? `exit ${r.status}`}): ${String(r.stderr).trim().slice(0, 200)}`;
    else probedNamespace = null;
  }
  return probedNamespace ?? setprivReason(host.setpriv ?? 'setpriv');
}

export interface WrapInput {
  osquerydPath: string;
  args: readonly string[];
  /** The supervisor's root directory: covered. */
  root: string;
  /** Paths (under root or elsewhere) the instance needs; those under root are bound back. */
  keep: readonly string[];
  /** Of `keep`, those bound back read-only (the osqueryd version directory other instances execute too, issue 17). */
  readOnly?: readonly string[];
  /** Other host paths to cover with an empty tmpfs (those that exist). */
  cover?: readonly string[];
  /** setpriv(1) (default `setpriv`). */
  setpriv?: string;
  /** The real gid osqueryd runs with (isolationGid of the registration). */
  gid: number;
}

export interface WrappedCommand {
  file: string;
  args: string[];
}

function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Relative path of `p` below `root`, or undefined when it is not below it. */
function below(root: string, p: string): string | undefined {
  const rel = relative(root, p);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return undefined;
  return rel;
}

/** The shell script run inside the new namespace before `exec "$@"`. Exported for tests. */
export function isolationScript(input: Omit<WrapInput, 'osquerydPath' | 'args'>): string {
  const lines = ['set -eu', `cd ${sq(input.root)}`, `mount -t tmpfs -o mode=0755,size=1m,nosuid,nodev olr-hidden ${sq(input.root)}`];
  for (const p of input.keep) {
    const rel = below(input.root, p);
    if (!rel || !existsSync(p)) continue;
    const target = `${input.root}${sep}${rel}`;
    // A directory is re-created as one, a file (a CA bundle under the root) as an empty file to bind onto.
    const make = statSync(p).isDirectory() ? `mkdir -p ${sq(target)}` : `mkdir -p ${sq(dirname(target))} && : > ${sq(target)}`;
    lines.push(make, `mount -c --bind ${sq(`./${rel}`)} ${sq(target)}`);
    if (input.readOnly?.includes(p)) lines.push(`mount -c -o remount,bind,ro ${sq(target)}`);
  }
  for (const c of input.cover ?? DEFAULT_COVERED_PATHS) {
    if (c === input.root || !existsSync(c)) continue;
    lines.push(`mount -t tmpfs -o mode=0755,size=1m,nosuid,nodev olr-hidden ${sq(c)}`);
  }
  // Without CAP_SYS_PTRACE osqueryd cannot walk /proc/<pid>/root of the supervisor, the vendor or any
  // other fully privileged process back into the host's view of the files; with a real gid that is not
  // its effective gid, no other tenant's osqueryd can walk into this one's (ADR 0016). The probe
  // (isolationUnavailableReason) made sure setpriv does exactly that: no fallback without it.
  lines.push('cd /', `exec ${sq(input.setpriv ?? 'setpriv')} ${setprivArgs(input.gid).join(' ')} -- "$@"`);
  return lines.join('\n');
}

/** The command that starts osqueryd inside its own mount namespace; its pid stays osqueryd's (see the file comment). */
export function wrapInNamespace(input: WrapInput): WrappedCommand {
  return {
    file: 'unshare',
    args: [
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      isolationScript(input),
      'olr-isolate',
      input.osquerydPath,
      ...input.args,
    ],
  };
}
