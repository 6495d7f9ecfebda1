/**
 * The extension's plugins registered on a real ExtensionServer with a
 * minimal extension manager on a Unix socket, called over Thrift as
 * osqueryd would.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExtensionServer } from '../../src/osquery/extension-server.js';
import { ExtensionClient } from '../../src/osquery/client.js';
import { LAUNCHER_INFO_COLUMNS } from '../../extensions/kolide_grpc/index.js';
import { startMinimalManager, type MinimalManager } from '../helpers/minimal-manager.js';
import { makeEnv, seqLine, seqOf, type Env } from './support.js';

let env: Env;
let manager: MinimalManager;
let server: ExtensionServer;
let client: ExtensionClient;

beforeEach(async () => {
  env = await makeEnv();
});

afterEach(async () => {
  client?.close();
  await server?.stop();
  await manager?.close();
  await env.cleanup();
});

describe('kolide_grpc on a real ExtensionServer', () => {
  it('registers config, logger, distributed and the launcher table and serves them over Thrift', async () => {
    const sock = join(env.dir, 'em.sock');
    manager = await startMinimalManager(sock);
    const ext = env.make({ identity: { version: '9.9.9', revision: 'abc123' } });
    server = new ExtensionServer({ name: 'kolide_grpc', managerPath: sock, plugins: ext.plugins, pingIntervalMs: 0 });
    const uuid = await server.start();
    const reg = manager.registered.get(uuid)!.registry;
    expect(Object.keys(reg.config!)).toEqual(['kolide_grpc']);
    expect(Object.keys(reg.logger!)).toEqual(['kolide_grpc']);
    expect(Object.keys(reg.distributed!)).toEqual(['kolide_grpc']);
    expect(reg.table!.kolide_launcher_info!.map((c) => c.name)).toEqual([...LAUNCHER_INFO_COLUMNS]);

    client = new ExtensionClient(server.socketPath);
    const cfg = await client.call('config', 'kolide_grpc', { action: 'genConfig' });
    expect(cfg.status.code).toBe(0);
    expect(JSON.parse(cfg.response[0]!.config!).options.distributed_interval).toBe(5);

    expect((await client.call('logger', 'kolide_grpc', { string: seqLine(1), category: 'event' })).status.code).toBe(0);
    expect((await client.call('logger', 'kolide_grpc', { status: 'true', log: '[{"s":0,"m":"up"}]' })).status.code).toBe(0);
    await ext.publishNow();
    expect(env.server.logs({ tenant: 'acme', logType: 0 }).map((l) => seqOf(l.data))).toEqual([1]);
    expect(env.server.logs({ tenant: 'acme', logType: 4 }).map((l) => JSON.parse(l.data).m)).toEqual(['up']);

    const name = env.server.addQuery('acme', 'select 1');
    const q = await client.call('distributed', 'kolide_grpc', { action: 'getQueries' });
    expect(JSON.parse(q.response[0]!.results!)).toEqual({ queries: { [name]: 'select 1' } });
    const w = await client.call('distributed', 'kolide_grpc', {
      action: 'writeResults',
      results: JSON.stringify({ queries: { [name]: [{ '1': '1' }] }, statuses: { [name]: 0 }, messages: {}, stats: {} }),
    });
    expect(w.status.code).toBe(0);
    expect(env.server.results({ queryName: name })).toHaveLength(1);

    const rows = await client.call('table', 'kolide_launcher_info', { action: 'generate', context: '{"constraints":[]}' });
    expect(rows.status.code).toBe(0);
    expect(rows.response).toHaveLength(1);
    expect(rows.response[0]).toMatchObject({
      version: '9.9.9',
      revision: 'abc123',
      enrollment_id: 'acme',
      identifier: ext.hostIdentifier,
      fingerprint: '',
    });
    expect(Object.keys(rows.response[0]!)).toEqual([...LAUNCHER_INFO_COLUMNS]);
  });
});
