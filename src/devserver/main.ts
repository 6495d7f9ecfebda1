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
import { createRootLogger, LogLevelError } from '../log/logger.js';
import { errorMessage } from '../errors.js';
import { startDevServer } from './server.js';
import { generateAdminToken, writeAdminTokenFile } from './admin-token.js';
import type { TenantSpec } from './store.js';

const USAGE = `Usage: launcher dev-server [options]

Run the local device server (Kolide JSON-RPC protocol). Prints one JSON line {"url","port"} on stdout once
listening; stops on SIGTERM / SIGINT.

Options:
  --port <n>                 port (default 0: any free port)
  --host <addr>              address (default 127.0.0.1)
  --db <file>                SQLite file (default: in memory)
  --tenant NAME:SECRET[,..]  a tenant and its enroll secrets (repeatable)
  --tls-cert <pem>           serve HTTPS with this certificate (with --tls-key)
  --tls-key <pem>            its private key
  --json                     errors as one JSON object {"error":{"code","message"}} on stderr
  --admin-token-file <file>  write a fresh admin token there (0600); /admin/ requests send
                             "Authorization: Bearer $(cat file)"; without it /admin/ answers 401
  -h, --help                 this help

Admin endpoints: GET /admin/logs and /admin/results take ?format=ndjson for one JSON object per line.
Exit status: 0 on success and --help, 2 on a usage error, 1 when the server cannot start.
`;

/** A bad command line: exit 2. */
class UsageError extends Error {}

function parseTenant(spec: string): TenantSpec {
  const i = spec.indexOf(':');
  if (i <= 0 || i === spec.length - 1) throw new UsageError(`--tenant ${JSON.stringify(spec)}: expected NAME:SECRET[,SECRET...]`);
  return {
    name: spec.slice(0, i),
    secrets: spec
      .slice(i + 1)
      .split(',')
      .filter((s) => s !== ''),
  };
}

const parseCommandLine = () =>
  parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      db: { type: 'string' },
      tenant: { type: 'string', multiple: true, default: [] },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'admin-token-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
    },
    strict: true,
  });

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine();
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${values.port}: expected 0-65535`);
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined))
    throw new UsageError('--tls-cert and --tls-key go together');
  const tenants = values.tenant.map(parseTenant);
  const adminToken = generateAdminToken();
  if (values['admin-token-file'] !== undefined) writeAdminTokenFile(values['admin-token-file'], adminToken);
  else process.stderr.write('devserver: no --admin-token-file: the /admin/ endpoints answer 401 to every request\n');
  const logger = createRootLogger({ name: 'devserver', pretty: false, destination: process.stderr as never });
  const server = await startDevServer({
    port,
    host: values.host,
    ...(values.db ? { dbPath: values.db } : {}),
    tenants,
    adminToken,
    ...(values['tls-cert'] ? { tls: { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']!) } } : {}),
    logger,
  });
  process.stdout.write(`${JSON.stringify({ url: server.url, port: server.port })}\n`);
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  const code = err instanceof UsageError ? 'E_USAGE' : ((err as { code?: unknown }).code ?? 'E_ERROR');
  // --json anywhere on the line (even when parsing failed): one JSON error object, as the other subcommands do.
  if (process.argv.includes('--json')) process.stderr.write(`${JSON.stringify({ error: { code, message: errorMessage(err) } })}\n`);
  else process.stderr.write(`devserver: ${errorMessage(err)}${err instanceof UsageError ? '\n(see launcher dev-server --help)' : ''}\n`);
  process.exit(err instanceof UsageError || err instanceof LogLevelError ? 2 : 1);
});
