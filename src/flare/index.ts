/** `launcher flare`: one .tar.gz a support engineer can read (issue 18, ADR 0020). */
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { writeArchive } from './archive.js';
import { collectFlare, type FlareManifest, type FlareOptions } from './collect.js';

export { flareMetricsSnapshot, type FlareManifest, type FlareOptions } from './collect.js';

/** `launcher-flare-<host>-<UTC time>.tar.gz` in the working directory. */
export function defaultFlarePath(now = new Date(), cwd = process.cwd()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const host = hostname().replace(/[^A-Za-z0-9_.-]/g, '_') || 'host';
  return resolve(cwd, `launcher-flare-${host}-${stamp}.tar.gz`);
}

/** Collect and write the flare; returns where it went and its manifest. */
export async function createFlare(o: FlareOptions & { output?: string }): Promise<{ path: string; manifest: FlareManifest }> {
  const path = o.output ? resolve(o.output) : defaultFlarePath();
  const { files, manifest } = await collectFlare(o);
  await writeArchive(path, files);
  return { path, manifest };
}
