import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { LauncherConfig } from '../../src/config/schema.js';
import { configSchema } from '../../src/config/schema.js';
import type { DoctorContext } from '../../src/doctor/types.js';

export const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const SIM = join(REPO, 'bin', 'osqueryd-sim');

/** A port nothing listens on (bound, then released). */
export function closedPort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

/** A validated config from a partial object (schema defaults apply). */
export function config(raw: Record<string, unknown>): LauncherConfig {
  return configSchema.parse({ device_server: { url: 'https://127.0.0.1:1' }, ...raw });
}

export function context(cfg: LauncherConfig | undefined, extra: Partial<DoctorContext> = {}): DoctorContext {
  return {
    config: cfg,
    configExplicit: true,
    configPath: '/test/launcher.yaml',
    env: {},
    timeoutMs: 3_000,
    now: new Date(),
    cgroupRoot: '/nonexistent',
    tmpdir: tmpdir(),
    ...extra,
  };
}

/** Write a YAML config (JSON is YAML) and return its path. */
export function writeConfig(dir: string, raw: Record<string, unknown>, name = 'launcher.yaml'): string {
  const path = join(dir, name);
  writeFileSync(path, `${JSON.stringify(raw, null, 2)}\n`);
  return path;
}
