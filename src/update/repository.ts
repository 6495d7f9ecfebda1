/**
 * The TUF client side (issue 17, adr/0018): `tuf-js` verifies the
 * repository's metadata (root → timestamp → snapshot → targets: signatures
 * against the trusted root's keys and thresholds, expiry, version numbers
 * that never go back, lengths and hashes) and every downloaded archive
 * (length and hashes from the signed targets metadata). This file only
 * wires it up and turns its errors into ours:
 *
 * - E_UPDATE: the repository answered and something was refused (a bad
 *   signature, expired metadata, a metadata or version rollback, a hash or
 *   length mismatch, a target too large). Logged loudly; nothing installed.
 * - E_UNAVAILABLE: the repository could not be reached or did not answer
 *   in time. Logged; nothing changes, the next check tries again.
 *
 * The trusted root shipped with the package (or given by path) seeds
 * `<root>/update/tuf/root.json`; tuf-js keeps the newest verified root there
 * (root rotation) and the last verified timestamp/snapshot/targets, which is
 * what lets it refuse a replay of older metadata (docs/protocol/tuf.md#client-workflow).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TargetFile, Updater } from 'tuf-js';
import { LauncherError, errorMessage } from '../errors.js';
import { archiveTarget, channelTarget, versionOfArchive, type Channel } from './layout.js';

export interface RepositoryOptions {
  /** Base URL of the metadata (`<url>/1.root.json`, `timestamp.json`, …). */
  metadataUrl: string;
  /** Base URL of the targets. */
  targetsUrl: string;
  /** The root.json to trust first (shipped with the package or configured). */
  trustedRootPath: string;
  /** Where tuf-js keeps verified metadata. */
  metadataDir: string;
  /** Bound on each HTTP request, body included (a server that hangs mid-download). */
  fetchTimeoutMs: number;
  /** Archives larger than this (per the signed metadata) are refused before any byte is fetched. */
  maxTargetBytes: number;
  platform: string;
}

export interface Release {
  version: string;
  target: TargetFile;
}

/** Errors of tuf-js that mean "the repository answered, and it was refused". */
const REFUSALS = new Set([
  'RepositoryError',
  'BadVersionError',
  'EqualVersionError',
  'ExpiredMetadataError',
  'UnsignedMetadataError',
  'LengthOrHashMismatchError',
  'DownloadLengthMismatchError',
  'ValueError',
  'CryptoError',
  'UnsupportedAlgorithmError',
]);

/** Our error for a tuf-js failure while doing `what`. */
export function classify(what: string, err: unknown): LauncherError {
  if (err instanceof LauncherError) return err;
  const kind = err instanceof Error ? err.constructor.name : 'Error';
  const msg = `${what}: ${kind}: ${errorMessage(err)}`;
  if (REFUSALS.has(kind)) return new LauncherError('E_UPDATE', `${msg} (refused)`, { cause: err });
  // tuf-js wraps what went wrong loading targets metadata in a RuntimeError carrying only the text of the cause.
  if (
    kind === 'RuntimeError' &&
    !/DownloadHTTPError|Failed to download|fetch failed|ECONN|ETIMEDOUT|EAI_AGAIN|abort|timeout|socket/i.test(msg)
  )
    return new LauncherError('E_UPDATE', `${msg} (refused)`, { cause: err });
  // Connection refused, DNS, a timeout (AbortSignal), an HTTP error status, a body cut short.
  return new LauncherError('E_UNAVAILABLE', msg, { cause: err });
}

function rootVersion(path: string): number {
  try {
    const v = (JSON.parse(readFileSync(path, 'utf8')) as { signed?: { version?: unknown } }).signed?.version;
    return typeof v === 'number' ? v : 0;
  } catch {
    return 0;
  }
}

export class UpdateRepository {
  private readonly o: RepositoryOptions;
  /** The client of the last successful refresh: downloads use its verified metadata. */
  private last: Updater | undefined;

  constructor(options: RepositoryOptions) {
    this.o = options;
  }

  /** Seed the trusted root (a newer shipped root replaces an older kept one). E_CONFIG when it cannot be read. */
  private seedRoot(): void {
    const local = join(this.o.metadataDir, 'root.json');
    if (!existsSync(this.o.trustedRootPath))
      throw new LauncherError('E_CONFIG', `update.trusted_root ${this.o.trustedRootPath} does not exist`);
    mkdirSync(this.o.metadataDir, { recursive: true, mode: 0o700 });
    if (!existsSync(local) || rootVersion(this.o.trustedRootPath) > rootVersion(local)) copyFileSync(this.o.trustedRootPath, local);
  }

  /** tuf-js is loaded on the first refresh, not at start: a supervisor without `update:` never loads it. */
  private async updater(targetDir?: string): Promise<Updater> {
    const { Updater } = await import('tuf-js');
    return new Updater({
      metadataDir: this.o.metadataDir,
      metadataBaseUrl: this.o.metadataUrl,
      targetBaseUrl: this.o.targetsUrl,
      ...(targetDir ? { targetDir } : {}),
      config: { fetchTimeout: this.o.fetchTimeoutMs, fetchRetry: 0, userAgent: 'osquery-launcher' },
    });
  }

  /** Refresh the metadata and read what `channel` points at, plus any pinned versions asked for. */
  async refresh(
    channel: Channel,
    wanted: readonly string[] = [],
  ): Promise<{ latest: Release | undefined; archives: Map<string, TargetFile> }> {
    this.seedRoot();
    const u = await this.updater();
    try {
      await u.refresh();
    } catch (err) {
      throw classify(`update repository ${this.o.metadataUrl}: metadata`, err);
    }
    this.last = u;
    const pointerName = channelTarget(this.o.platform, channel);
    let latest: Release | undefined;
    const pointer = await u.getTargetInfo(pointerName).catch((err: unknown) => {
      throw classify(`update repository ${this.o.metadataUrl}: target ${pointerName}`, err);
    });
    if (pointer) {
      const version = versionOfArchive(pointer.custom.target, this.o.platform);
      const target = await this.archive(u, version);
      if (!target)
        throw new LauncherError(
          'E_UPDATE',
          `channel ${channel} points at ${archiveTarget(this.o.platform, version)}, which is not a signed target`,
        );
      latest = { version, target };
    }
    const archives = new Map<string, TargetFile>();
    for (const v of wanted) {
      const t = await this.archive(u, v);
      if (t) archives.set(v, t);
    }
    return { latest, archives };
  }

  private async archive(u: Updater, version: string): Promise<TargetFile | undefined> {
    const name = archiveTarget(this.o.platform, version);
    const t = await u.getTargetInfo(name).catch((err: unknown) => {
      throw classify(`update repository ${this.o.metadataUrl}: target ${name}`, err);
    });
    if (t && t.length > this.o.maxTargetBytes)
      throw new LauncherError(
        'E_UPDATE',
        `target ${name} is ${t.length} bytes, over update.max_target_mb (${Math.floor(this.o.maxTargetBytes / 1048576)} MiB); refused`,
      );
    return t;
  }

  /** Download `target` to `file`, verified against the signed length and hashes (tuf-js). */
  async download(target: TargetFile, file: string): Promise<void> {
    const u = this.last;
    if (!u) throw new LauncherError('E_INTERNAL', `download of ${target.path} before any metadata refresh`);
    try {
      await u.downloadTarget(target, file);
    } catch (err) {
      throw classify(`update repository ${this.o.targetsUrl}: download of ${target.path}`, err);
    }
  }
}
