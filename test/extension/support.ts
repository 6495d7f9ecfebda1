/**
 * Test environment for the kolide_grpc extension: a temp dir, the
 * supervisor's SQLite file, a dev server with two tenants and one shared
 * device client.
 */
import { join } from 'node:path';
import { DeviceClient, type DeviceClientOptions } from '../../src/device/index.js';
import { startDevServer, type DevServer } from '../../src/devserver/index.js';
import { openDatabase, type SqliteDatabase } from '../../src/store/database.js';
import { dispatchPluginCall, type Plugin } from '../../src/osquery/plugins.js';
import type { ExtensionResponse, PluginRequest } from '../../src/osquery/protocol.js';
import { createKolideExtension, type KolideExtension, type KolideExtensionOptions } from '../../extensions/kolide_grpc/index.js';
import { shortTempDir } from '../helpers/tmp.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

export const ACME_SECRET = 'eyJhbGciOiJIUzI1NiJ9.eyJvcmdhbml6YXRpb24iOiJhY21lIn0.sig';
export const GLOBEX_SECRET = 'globex-secret';

export interface Env {
  dir: string;
  dbPath: string;
  db: SqliteDatabase;
  server: DevServer;
  client: DeviceClient;
  extensions: KolideExtension[];
  make(options?: Partial<KolideExtensionOptions>): KolideExtension;
  /** Reopen the database (simulated restart of the supervisor). */
  reopen(): void;
  cleanup(): Promise<void>;
}

export async function makeEnv(clientOptions: Partial<DeviceClientOptions> = {}): Promise<Env> {
  const tmp = shortTempDir('ext');
  const dbPath = join(tmp.dir, 'launcher.db');
  const server = await startDevServer({
    tenants: [
      { name: 'acme', secrets: [ACME_SECRET] },
      { name: 'globex', secrets: [GLOBEX_SECRET], config: '{"options":{"tenant":"globex"},"schedule":{}}' },
    ],
  });
  const env: Env = {
    dir: tmp.dir,
    dbPath,
    db: openDatabase(dbPath),
    server,
    client: new DeviceClient({ serverUrl: server.url, insecureTransport: true, maxAttempts: 1, timeoutMs: 5_000, ...clientOptions }),
    extensions: [],
    make(options = {}) {
      const ext = createKolideExtension({
        registrationId: rid('acme'),
        enrollSecret: ACME_SECRET,
        client: env.client,
        db: env.db,
        publishIntervalMs: 60_000,
        distributedStartupWindowMs: 0,
        ...options,
      });
      env.extensions.push(ext);
      return ext;
    },
    reopen() {
      env.db.close();
      env.db = openDatabase(dbPath);
    },
    async cleanup() {
      for (const e of env.extensions) await e.stop();
      env.client.close();
      await server.close();
      if (env.db.open) env.db.close();
      tmp.cleanup();
    },
  };
  return env;
}

/** One plugin call with osqueryd's request shape. */
export function call(plugin: Plugin, request: PluginRequest): Promise<ExtensionResponse> {
  return dispatchPluginCall(plugin, request);
}

/** `{"name":"seq","seq":n}` result lines. */
export function seqLine(n: number, pad = 0): string {
  return JSON.stringify({ name: 'seq', seq: n, ...(pad > 0 ? { pad: 'p'.repeat(pad) } : {}) });
}

export function seqOf(data: string): number {
  return (JSON.parse(data) as { seq: number }).seq;
}
