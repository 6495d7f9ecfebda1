#!/usr/bin/env node
/**
 * Standalone dev server:
 *   node dist/src/devserver/main.js --port 0 --db path [--host 127.0.0.1]
 *     [--tenant NAME:SECRET[,SECRET...]]... [--tls-cert cert.pem --tls-key key.pem]
 *     [--admin-token-file path]
 * Prints one JSON line `{"url":…,"port":…}` on stdout once listening; stops
 * on SIGTERM / SIGINT. `--admin-token-file`: a fresh admin token is written
 * there (0600) before listening; `/admin/...` requests send it as
 * `Authorization: Bearer $(cat path)`. Without it the token is random and
 * known to nobody, so the admin endpoints answer 401 to everyone.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createRootLogger } from '../log/logger.js';
import { errorMessage } from '../errors.js';
import { startDevServer } from './server.js';
import { generateAdminToken, writeAdminTokenFile } from './admin-token.js';
import type { TenantSpec } from './store.js';

function parseTenant(spec: string): TenantSpec {
  const i = spec.indexOf(':');
  if (i <= 0 || i === spec.length - 1) throw new Error(`--tenant ${JSON.stringify(spec)}: expected NAME:SECRET[,SECRET...]`);
  return { name: spec.slice(0, i), secrets: spec.slice(i + 1).split(',').filter((s) => s !== '') };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      db: { type: 'string' },
      tenant: { type: 'string', multiple: true, default: [] },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'admin-token-file': { type: 'string' },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${values.port}: expected 0-65535`);
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new Error('--tls-cert and --tls-key go together');
  const adminToken = generateAdminToken();
  if (values['admin-token-file'] !== undefined) writeAdminTokenFile(values['admin-token-file'], adminToken);
  else process.stderr.write('devserver: no --admin-token-file: the /admin/ endpoints answer 401 to every request\n');
  const logger = createRootLogger({ name: 'devserver', pretty: false, destination: process.stderr as never });
  const server = await startDevServer({
    port,
    host: values.host,
    ...(values.db ? { dbPath: values.db } : {}),
    tenants: values.tenant.map(parseTenant),
    adminToken,
    ...(values['tls-cert'] ? { tls: { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']!) } } : {}),
    logger,
  });
  process.stdout.write(JSON.stringify({ url: server.url, port: server.port }) + '\n');
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`devserver: ${errorMessage(err)}\n`);
  process.exit(1);
});
