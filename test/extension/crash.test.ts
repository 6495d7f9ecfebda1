/**
 * A supervisor process (dist/extensions/kolide_grpc/tools/run-extension.js)
 * killed with SIGKILL while a PublishLogs is in flight loses none of the
 * logs waiting for acknowledgment: after a restart on the same database
 * they all arrive, in order, together with the new ones.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from '../../src/devserver/index.js';
import { openDatabase } from '../../src/store/database.js';
import { LogBuffer } from '../../src/store/log-buffer.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';
import { seqOf } from './support.js';

const RUN = resolve('dist/extensions/kolide_grpc/tools/run-extension.js');

let tmp: { dir: string; cleanup: () => void };
let server: DevServer;
const children: ChildProcess[] = [];

beforeEach(async () => {
  tmp = shortTempDir('crash');
  server = await startDevServer({ tenants: [{ name: 'acme', secrets: ['s3cret'] }] });
});

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      const exited = once(c, 'exit');
      c.kill('SIGKILL');
      await exited;
    }
  }
  await server.close();
  tmp.cleanup();
});

function runExtension(args: string[]): { child: ChildProcess; events: Array<Record<string, unknown>> } {
  const child = spawn(
    process.execPath,
    [RUN, '--db', join(tmp.dir, 'l.db'), '--url', server.url, '--secret', 's3cret', '--publish-ms', '50', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  const events: Array<Record<string, unknown>> = [];
  // Drain stderr so a chatty child never blocks on a full pipe.
  child.stderr!.resume();
  createInterface({ input: child.stdout! }).on('line', (l) => events.push(JSON.parse(l) as Record<string, unknown>));
  return { child, events };
}

describe('crash safety of the log buffer', () => {
  it('SIGKILL mid-publish loses no log waiting for acknowledgment', async () => {
    server.setFault({ mode: 'hang', methods: ['PublishLogs'] });
    const first = runExtension(['--append', '300', '--append-start', '0']);
    await waitFor(() => first.events.some((e) => e.event === 'started'), 15_000, 'first run started');
    await waitFor(() => server.stats().inFlightByMethod.PublishLogs >= 1, 15_000, 'a PublishLogs in flight');
    const exited = once(first.child, 'exit');
    first.child.kill('SIGKILL');
    const [, signal] = (await exited) as [number | null, string | null];
    expect(signal).toBe('SIGKILL');
    expect(server.logs()).toHaveLength(0);

    server.setFault(undefined);
    const second = runExtension(['--append', '100', '--append-start', '300']);
    await waitFor(
      () => new Set(server.logs({ tenant: 'acme', logType: 0 }).map((l) => seqOf(l.data))).size === 400,
      20_000,
      'all 400 logs delivered',
    );
    const firstSeen = [...new Set(server.logs({ tenant: 'acme', logType: 0 }).map((l) => seqOf(l.data)))];
    expect(firstSeen).toEqual(Array.from({ length: 400 }, (_, i) => i));
    // Both runs used the same registration: one enrollment, one node.
    expect(server.stats().calls.RequestEnrollment).toBe(1);
    expect(server.nodes('acme')).toHaveLength(1);

    // The second run acknowledges everything (read through the same SQLite file).
    const db = openDatabase(join(tmp.dir, 'l.db'));
    try {
      // A LogBuffer counts its streams once when opened (counts then live in memory), so open it afresh each poll to see
      // the other process's acknowledged deletes.
      await waitFor(() => new LogBuffer(db).stats('default', 'result').count === 0, 20_000, 'buffer drained');
    } finally {
      db.close();
    }
    const stopped = once(second.child, 'exit');
    second.child.kill('SIGTERM');
    const [code] = (await stopped) as [number | null];
    expect(code).toBe(0);
    const last = second.events.find((e) => e.event === 'stopped') as { status: { buffers: { result: { count: number } } } } | undefined;
    expect(last?.status.buffers.result.count).toBe(0);
  });
});
