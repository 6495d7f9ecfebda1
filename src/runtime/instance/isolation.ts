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
 *   - execs osqueryd through `setpriv --bounding-set=-sys_ptrace` (util-linux,
 *     also in place) when it is installed, so `/proc/<pid>/root` of the
 *     supervisor and of other full-privilege processes cannot be walked.
 * Bind mounts share inodes, so the Unix sockets in the socket directory work
 * between the supervisor (host namespace) and osqueryd. The rest of the host
 * is unchanged. Mounts are private: nothing propagates back to the host, and
 * the namespace goes away with its last process.
 *
 * Where the host cannot do it (not root, no unshare/mount, namespaces
 * refused), the instance starts unwrapped and its status says
 * `isolation: unavailable` with the reason.
 */
import { spawnSync } from 'node:child_process';
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

export interface IsolationHost {
  /** Effective uid (default process.geteuid()). */
  euid?: number;
  /** Force unavailability with this reason (tests, or a config that turns the namespace off). */
  unavailableReason?: string;
}

let probed: string | null | undefined;

/** Why this host cannot make a private mount namespace, or undefined when it can (probed once: `unshare -m true`). */
export function isolationUnavailableReason(host: IsolationHost = {}): string | undefined {
  if (host.unavailableReason) return host.unavailableReason;
  const euid = host.euid ?? process.geteuid?.();
  if (euid !== 0) return `mount namespaces need root; the supervisor runs as uid ${euid ?? 'unknown'}`;
  if (probed === undefined) {
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'true'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5000 });
    if (r.error) probed = `unshare(1) cannot run: ${r.error.message}`;
    else if (r.status !== 0)
      probed = `unshare --mount failed (${r.signal ?? `exit ${r.status}`}): ${String(r.stderr).trim().slice(0, 200)}`;
    else probed = null;
  }
  return probed ?? undefined;
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
  // Without CAP_SYS_PTRACE osqueryd cannot walk /proc/<pid>/root of the supervisor, the vendor or
  // any other fully privileged process back into the host's view of the files (ADR 0016).
  lines.push('cd /', 'command -v setpriv >/dev/null 2>&1 && exec setpriv --bounding-set=-sys_ptrace -- "$@"', 'exec "$@"');
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
