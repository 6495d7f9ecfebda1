/** Enrollment, re-enrollment on node_invalid and disable_device (docs/protocol/device.md#enrollment, docs/protocol/device.md#re-enroll, docs/protocol/device.md#errors). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ENROLLMENT_DETAIL_KEYS } from '../../src/device/index.js';
import { NodeKeyStore } from '../../src/store/node-keys.js';
import { waitFor } from '../helpers/tmp.js';
import { ACME_SECRET, call, makeEnv, seqLine, type Env } from './support.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

let env: Env;

beforeEach(async () => {
  env = await makeEnv();
});

afterEach(async () => {
  await env.cleanup();
});

describe('kolide_grpc enrollment', () => {
  it('start() enrolls in the background and stores the node key per registration', async () => {
    const ext = env.make({
      enrollmentDetails: { os_version: '22.04', hardware_serial: 'SN1', osquery_version: '5.12.1' },
      identity: { version: '0.1.0' },
    });
    ext.start();
    await waitFor(() => ext.status().enrolled, 5_000, 'enrolled');
    const key = new NodeKeyStore(env.db).getNodeKey('acme');
    expect(key).toMatch(/^acme::/);
    expect(new NodeKeyStore(env.db).get('acme')?.munemo).toBe('acme');
    expect(env.server.stats().calls.RequestEnrollment).toBe(1);
    const [req] = env.server.requests().filter((r) => r.rpcMethod === 'RequestEnrollment');
    const params = JSON.parse(req!.body.toString()).params;
    expect(params.host_identifier).toBe(ext.hostIdentifier);
    expect(params.enroll_secret).toBe(ACME_SECRET);
    expect(Object.keys(params.EnrollmentDetails)).toEqual([...ENROLLMENT_DETAIL_KEYS]);
    expect(params.EnrollmentDetails).toMatchObject({
      os_version: '22.04',
      hardware_serial: 'SN1',
      launcher_version: '0.1.0',
      goos: process.platform === 'win32' ? 'windows' : process.platform,
    });
    expect(env.server.nodes('acme')[0]!.hostIdentifier).toBe(ext.hostIdentifier);
  });

  it('does not enroll again when a node key is stored; the host identifier survives restarts', async () => {
    const first = env.make();
    await first.enroll();
    await first.stop();
    env.reopen();
    const second = env.make();
    expect(second.hostIdentifier).toBe(first.hostIdentifier);
    await second.enroll();
    expect(env.server.stats().calls.RequestEnrollment).toBe(1);
  });

  it('reads the secret from a file, trimmed', async () => {
    const path = join(env.dir, 'secret');
    writeFileSync(path, `  \n${ACME_SECRET}\n\n`);
    const ext = env.make({ enrollSecret: undefined, enrollSecretPath: path });
    expect(await ext.enroll()).toMatch(/^acme::/);
  });

  it('a missing or empty secret file is a clear error, not a crash; config falls back to {}', async () => {
    const missing = env.make({ enrollSecret: undefined, enrollSecretPath: join(env.dir, 'nope') });
    missing.start();
    await waitFor(() => missing.status().lastError, 5_000, 'enroll error');
    expect(missing.status().lastError).toMatchObject({ operation: 'enroll', code: 'E_CONFIG' });
    expect(missing.status().lastError!.message).toContain(join(env.dir, 'nope'));
    expect(missing.status().enrolled).toBe(false);
    const res = await call(missing.configPlugin, { action: 'genConfig' });
    expect(res.status.code).toBe(0);
    expect(res.response).toEqual([{ config: '{}' }]);

    const emptyPath = join(env.dir, 'empty');
    writeFileSync(emptyPath, ' \n');
    const empty = env.make({ registrationId: rid('other'), enrollSecret: undefined, enrollSecretPath: emptyPath });
    await expect(empty.enroll()).rejects.toThrow(/is empty/);
    expect(env.server.stats().calls.RequestEnrollment).toBe(0);
    expect(() => env.make({ enrollSecretPath: emptyPath })).toThrow(/not both/);
  });

  it('a rejected secret (node_invalid on enrollment) is an error and stores nothing', async () => {
    const ext = env.make({ enrollSecret: 'wrong' });
    await expect(ext.enroll()).rejects.toMatchObject({ code: 'E_NODE_INVALID' });
    expect(ext.status().nodeKeyPresent).toBe(false);
  });

  it('node_invalid triggers exactly one re-enroll, then the call is retried once', async () => {
    const ext = env.make();
    const oldKey = await ext.enroll();
    env.server.revokeNodeKeys({ tenant: 'acme' });
    const res = await call(ext.configPlugin, { action: 'genConfig' });
    expect(res.status.code).toBe(0);
    const stats = env.server.stats().calls;
    expect(stats.RequestEnrollment).toBe(2);
    expect(stats.RequestConfig).toBe(2);
    const newKey = new NodeKeyStore(env.db).getNodeKey('acme');
    expect(newKey).not.toBe(oldKey);
    expect(ext.status()).toMatchObject({ reenrollments: 1, enrollments: 2 });
    const configBodies = env.server
      .requests()
      .filter((r) => r.rpcMethod === 'RequestConfig')
      .map((r) => JSON.parse(r.body.toString()).params.node_key);
    expect(configBodies).toEqual([oldKey, newKey]);
  });

  it('concurrent calls that all see node_invalid share one re-enroll', async () => {
    const ext = env.make();
    await ext.enroll();
    await ext.loggerPlugin.logString(seqLine(1), 'string');
    env.server.revokeNodeKeys({ tenant: 'acme' });
    const results = await Promise.all([
      call(ext.configPlugin, { action: 'genConfig' }),
      call(ext.distributedPlugin, { action: 'getQueries' }),
      ext.publishNow(),
      call(ext.distributedPlugin, { action: 'writeResults', results: '{"queries":{},"statuses":{"q":0}}' }),
    ]);
    expect(results[0]).toMatchObject({ status: { code: 0 } });
    expect(results[1]).toMatchObject({ status: { code: 0 } });
    expect(results[3]).toMatchObject({ status: { code: 0 } });
    expect(env.server.stats().calls.RequestEnrollment).toBe(2);
    expect(ext.status().reenrollments).toBe(1);
    expect(env.server.logs({ tenant: 'acme' })).toHaveLength(1);
  });

  it('gives up after a second node_invalid (no loop)', async () => {
    const ext = env.make();
    await ext.enroll();
    // Every new key is revoked as soon as it is used.
    env.server.revokeNodeKeys();
    const origEnroll = env.client.requestEnrollment.bind(env.client);
    env.client.requestEnrollment = async (...args) => {
      const r = await origEnroll(...args);
      env.server.revokeNodeKeys({ nodeKey: r.nodeKey });
      return r;
    };
    const res = await call(ext.configPlugin, { action: 'genConfig' });
    expect(res.status.code).toBe(1);
    expect(res.status.message).toMatch(/node_invalid|no config/);
    expect(ext.status().lastError?.code).toBe('E_NODE_INVALID');
    expect(env.server.stats().calls.RequestEnrollment).toBe(2);
    expect(env.server.stats().calls.RequestConfig).toBe(2);
  });

  it('disable_device disables this registration only, calls back once and shows in status', async () => {
    const disabled: string[] = [];
    const acme = env.make({ onDisableDevice: (id) => disabled.push(id), publishIntervalMs: 20 });
    const globex = env.make({ registrationId: rid('globex'), enrollSecret: 'globex-secret' });
    acme.start();
    globex.start();
    await waitFor(() => acme.status().enrolled && globex.status().enrolled, 5_000, 'both enrolled');
    env.server.setDisabled('acme', true);
    const res = await call(acme.configPlugin, { action: 'genConfig' });
    expect(res.status.code).toBe(1);
    expect(res.status.message).toMatch(/disable/);
    await call(acme.distributedPlugin, { action: 'getQueries' });
    expect(disabled).toEqual(['acme']);
    expect(acme.status()).toMatchObject({ disabled: true, enrolled: false });
    expect(acme.status().lastError?.code).toBe('E_DEVICE_DISABLED');
    const before = env.server.stats().calls;
    await acme.publishNow();
    expect(env.server.stats().calls).toEqual(before);
    expect((await call(globex.configPlugin, { action: 'genConfig' })).status.code).toBe(0);
    expect(globex.status().disabled).toBe(false);
  });

  it('start/stop are idempotent and stop ends the loops', async () => {
    const ext = env.make({ publishIntervalMs: 10 });
    ext.start();
    ext.start();
    await waitFor(() => ext.status().enrolled, 5_000, 'enrolled');
    await Promise.all([ext.stop(), ext.stop()]);
    await ext.stop();
    expect(ext.status()).toMatchObject({ started: true, stopped: true });
    await ext.loggerPlugin.logString(seqLine(1), 'string');
    const before = env.server.stats().calls.PublishLogs;
    await ext.publishNow();
    expect(env.server.stats().calls.PublishLogs).toBe(before);
    expect(ext.status().buffers.result.count).toBe(1);
    await expect(ext.enroll()).rejects.toMatchObject({ code: 'E_SHUTDOWN' });
  });
});
