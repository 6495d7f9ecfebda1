#!/usr/bin/env node
/**
 * Run one kolide_grpc extension without osqueryd, against a device server:
 * optionally feed numbered result logs through the logger plugin, then start
 * enrollment and the publication loop until SIGTERM / SIGINT. For tests
 * (crash recovery) and manual runs.
 *
 *   node dist/extensions/kolide_grpc/tools/run-extension.js --db path --url http://127.0.0.1:PORT
 *     --secret S [--registration default] [--publish-ms 100] [--append N] [--append-start K]
 *     [--line-bytes 200] [--max-batch-bytes B]
 *
 * stdout: JSON lines {"event":"appended"|"started"|"stopped", ...}.
 * Each appended log is `{"name":"seq","seq":<n>,"pad":"…"}`.
 */
import { parseArgs } from 'node:util';
import { DeviceClient } from '../../../src/device/index.js';
import { openDatabase } from '../../../src/store/database.js';
import { createRootLogger } from '../../../src/log/logger.js';
import { errorMessage } from '../../../src/errors.js';
import { createKolideExtension } from '../extension.js';
import { parseRegistrationId } from '../../../src/registration.js';

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      db: { type: 'string' },
      url: { type: 'string' },
      secret: { type: 'string' },
      registration: { type: 'string', default: 'default' },
      'publish-ms': { type: 'string', default: '100' },
      append: { type: 'string', default: '0' },
      'append-start': { type: 'string', default: '0' },
      'line-bytes': { type: 'string', default: '200' },
      'max-batch-bytes': { type: 'string' },
    },
    strict: true,
  });
  if (!values.db || !values.url || !values.secret) throw new Error('--db, --url and --secret are required');
  const logger = createRootLogger({ level: 'warn', pretty: false, destination: process.stderr as never });
  const db = openDatabase(values.db);
  const client = new DeviceClient({
    serverUrl: values.url,
    insecureTransport: values.url.startsWith('http:'),
    timeoutMs: 120_000,
    maxAttempts: 1,
    logger,
  });
  const ext = createKolideExtension({
    registrationId: parseRegistrationId(values.registration, '--registration'),
    enrollSecret: values.secret,
    client,
    db,
    logger,
    publishIntervalMs: Number(values['publish-ms']),
    ...(values['max-batch-bytes'] ? { maxBytesPerBatch: Number(values['max-batch-bytes']) } : {}),
  });

  const count = Number(values.append);
  const start = Number(values['append-start']);
  const pad = 'x'.repeat(Math.max(0, Number(values['line-bytes']) - 40));
  for (let i = 0; i < count; i++) {
    await ext.loggerPlugin.logString(JSON.stringify({ name: 'seq', seq: start + i, pad }), 'string');
  }
  emit({ event: 'appended', count, start });

  ext.start();
  emit({ event: 'started', host_identifier: ext.hostIdentifier });

  const stop = () => {
    ext
      .stop()
      .then(() => {
        emit({ event: 'stopped', status: ext.status() });
        client.close();
        db.close();
        process.exit(0);
      })
      .catch((err: unknown) => {
        process.stderr.write(`run-extension: stop failed: ${errorMessage(err)}\n`);
        process.exit(1);
      });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`run-extension: ${errorMessage(err)}\n`);
  process.exit(1);
});
