/**
 * Target names in the update repository (adr/0018, docs/protocol/tuf.md#layout-of-the-osqueryd-repository). Two kinds of target, both
 * in the signed `targets` metadata:
 *
 *   osqueryd/<platform>/osqueryd-<version>.tar.gz     the release archive
 *   osqueryd/<platform>/<channel>/release.json        a channel's pointer
 *
 * A channel's pointer target carries `custom: {"target": "<archive name>"}`.
 * Its custom metadata is signed with the targets role like everything else,
 * so moving a channel is one signed metadata change and the client never
 * downloads the pointer file itself. This is Kolide launcher's layout, with
 * osqueryd's name and without the architecture level (one archive per
 * platform here; a repository serving several architectures uses
 * `<platform>` values like `linux-arm64`).
 */
import { LauncherError } from '../errors.js';
import { VERSION_PATTERN, versionProblem } from './version.js';

export const CHANNELS = ['stable', 'beta', 'nightly'] as const;
export type Channel = (typeof CHANNELS)[number];

/** The platform name in target paths: `linux`, `darwin`, … (Node's names). */
export function platformName(platform: NodeJS.Platform = process.platform): string {
  return platform;
}

export function channelTarget(platform: string, channel: Channel): string {
  return `osqueryd/${platform}/${channel}/release.json`;
}

export function archiveTarget(platform: string, version: string): string {
  return `osqueryd/${platform}/osqueryd-${version}.tar.gz`;
}

const ARCHIVE = new RegExp(`^osqueryd/([a-z0-9_-]{1,32})/osqueryd-(${VERSION_PATTERN.source.slice(1, -1)})\\.tar\\.gz$`);

/**
 * The version an archive target names, checked: exactly
 * `osqueryd/<platform>/osqueryd-<version>.tar.gz` for this platform, nothing
 * else (no `..`, no other directory, no other platform). E_UPDATE otherwise.
 */
export function versionOfArchive(target: unknown, platform: string): string {
  if (typeof target !== 'string' || target.length > 200)
    throw new LauncherError('E_UPDATE', `channel pointer names no usable archive target: ${JSON.stringify(String(target).slice(0, 80))}`);
  const m = ARCHIVE.exec(target);
  if (!m || m[1] !== platform || versionProblem(m[2]!) !== undefined)
    throw new LauncherError(
      'E_UPDATE',
      `channel pointer names ${JSON.stringify(target.slice(0, 120))}, not osqueryd/${platform}/osqueryd-<version>.tar.gz`,
    );
  return m[2]!;
}
