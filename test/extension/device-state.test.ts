/**
 * issue 15, at the extension: wrong_region is followed per registration and
 * persisted across restarts; each registration's device standing is kept
 * (failing with the backend's word, enrolled once it works); enrollment
 * waits (bounded) for osqueryd's details without holding another
 * registration back. Real dev server and capturing HTTP servers on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceStateTracker } from '../../extensions/kolide_grpc/index.js';
import { DeviceClient } from '../../src/device/index.js';
import { RegistrationStore } from '../../src/store/registrations.js';
import { rpcResult, startCaptureServer, type CaptureServer } from '../device/support.js';
import { ACME_SECRET, GLOBEX_SECRET, makeEnv, type Env } from './support.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

let env: Env | undefined;
const servers: CaptureServer[] = [];
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
  for (const s of servers.splice(0)) await s.close();
});

/** Replace the env's shared client by one configured for `url`. */
function useClient(e: Env, url: string): void {
  e.client.close();
  e.client = new DeviceClient({ serverUrl: url, insecureTransport: true, maxAttempts: 1 });
}

/** An "old region" that answers every enrollment with wrong_region and the dev server's URL. */
async function oldRegion(to: string, extra: Record<string, unknown> = {}): Promise<CaptureServer> {
  const s = await startCaptureServer(
    rpcResult({
      node_key: '',
      node_invalid: false,
      wrong_region: true,
      deployment_urls: { enrollment_url: to, control_server_url: 'https://control.eu.example', osquery_publisher_url: '' },
      ...extra,
    }),
  );
  servers.push(s);
  return s;
}

describe('wrong_region (issue 15)', () => {
  // issue 15: wrong_region was treated as an error and the new URLs were dropped.
  it('moves the registration to the URL the backend names, enrolls there, and keeps it across a restart', async () => {
    // The shared client is configured for the old region; the dev server is the new one.
    env = await makeEnv();
    const old = await oldRegion(env.server.url);
    useClient(env, old.url);
    new RegistrationStore(env.db).add({ id: 'acme', enrollSecret: ACME_SECRET });

    const ext = env.make();
    await ext.enroll();
    expect(old.requests).toHaveLength(1);
    expect(env.server.nodes('acme')).toHaveLength(1);
    expect(ext.status().deviceUrl).toBe(env.server.url);
    expect(ext.status().device.state).toBe('enrolled');
    expect(new RegistrationStore(env.db).get('acme')!.deployment).toEqual({
      deviceUrl: env.server.url,
      controlServerUrl: 'https://control.eu.example',
    });

    // Restart: a new database handle and a new extension; every call goes to the new region directly.
    await ext.stop();
    env.reopen();
    const again = env.make();
    const cfg = await again.configPlugin.genConfig();
    expect(Object.keys(cfg)).toEqual(['config']);
    expect(old.requests).toHaveLength(1);
    expect(env.server.requests().some((r) => r.rpcMethod === 'RequestConfig')).toBe(true);
    expect(again.status().deviceUrl).toBe(env.server.url);
  });

  it('fails with a clear message when wrong_region names no new URL, and stores nothing', async () => {
    env = await makeEnv();
    const s = await startCaptureServer(rpcResult({ node_key: '', wrong_region: true }));
    servers.push(s);
    useClient(env, s.url);
    new RegistrationStore(env.db).add({ id: 'acme', enrollSecret: ACME_SECRET });
    const ext = env.make();
    await expect(ext.enroll()).rejects.toThrow(/wrong_region without a new enrollment_url/);
    expect(new RegistrationStore(env.db).get('acme')!.deployment).toBeUndefined();
    expect(ext.status().device).toMatchObject({ state: 'failing', error: expect.stringMatching(/^enroll: .*wrong_region/) });
  });
});

describe('device state (issue 15)', () => {
  // issue 15: a wrong secret looked healthy: no device state, last error only in the log.
  it('is failing with the backend answer and since when, and enrolled once a good secret works', async () => {
    env = await makeEnv();
    const tracker = new DeviceStateTracker();
    const bad = env.make({ enrollSecret: 'not-a-known-secret', deviceState: tracker });
    expect(bad.status().device.state).toBe('enrolling');
    await expect(bad.enroll()).rejects.toThrow(/node_invalid/);
    const failing = bad.status().device;
    expect(failing.state).toBe('failing');
    expect(failing.error).toMatch(/^enroll: .*node_invalid.*enroll_secret_unknown/);
    expect(failing.since).toBeGreaterThan(0);
    // A second failure keeps the streak's start.
    await expect(bad.enroll()).rejects.toThrow();
    expect(bad.status().device.since).toBe(failing.since);
    await bad.stop();
    // The same registration's next run (same tracker), with the right secret.
    const good = env.make({ enrollSecret: ACME_SECRET, deviceState: tracker });
    await good.enroll();
    expect(good.status().device).toEqual({ state: 'enrolled', error: null, since: null });
  });

  // issue 15: an unreachable device server looked healthy too.
  it('is failing with the transport error when the device server cannot be reached', async () => {
    env = await makeEnv();
    const gone = await startCaptureServer(rpcResult({}));
    const url = gone.url;
    await gone.close();
    useClient(env, url);
    const ext = env.make();
    await expect(ext.enroll()).rejects.toThrow();
    expect(ext.status().device).toMatchObject({
      state: 'failing',
      error: expect.stringMatching(/^enroll: RequestEnrollment: POST .* failed/),
    });
  });

  it('is failing when a config fetch fails after enrolling, and clears when it works again', async () => {
    env = await makeEnv();
    const ext = env.make();
    await ext.enroll();
    env.server.setFault({ mode: 'rpc-error', methods: ['RequestConfig'] });
    await ext.configPlugin.genConfig().catch(() => undefined);
    expect(ext.status().device).toMatchObject({ state: 'failing', error: expect.stringMatching(/^config: /) });
    env.server.setFault(undefined);
    await ext.configPlugin.genConfig();
    expect(ext.status().device.state).toBe('enrolled');
  });
});

describe('enrollment details wait (issue 15)', () => {
  it('waits for osqueryd (bounded), enrolls with what it has, and never holds another registration back', async () => {
    env = await makeEnv();
    // acme's osqueryd never answers; globex's answers at once.
    const stuck = env.make({
      osqueryQuery: () => new Promise(() => undefined),
      detailsTimings: { waitMs: 1_500, retryMs: 100, giveUpMs: 60_000 },
    });
    const fine = env.make({
      registrationId: rid('globex'),
      enrollSecret: GLOBEX_SECRET,
      osqueryQuery: async () => [
        {
          os_version: '12 (bookworm)',
          os_name: 'Debian GNU/Linux',
          hostname: 'h-from-osquery',
          osquery_version: '5.99.0',
          hardware_uuid: 'U-1',
          os_build_id: '',
        },
      ],
    });
    stuck.start();
    fine.start();
    let stuckDone = false;
    const stuckEnroll = stuck.enroll().then((k) => {
      stuckDone = true;
      return k;
    });
    await fine.enroll();
    expect(stuckDone).toBe(false);
    const globex = env.server.nodes('globex')[0]!.details;
    expect(globex).toMatchObject({
      os_version: '12 (bookworm)',
      os_name: 'Debian GNU/Linux',
      hostname: 'h-from-osquery',
      osquery_version: '5.99.0',
      hardware_uuid: 'U-1',
    });
    await stuckEnroll;
    const acme = env.server.nodes('acme')[0]!.details;
    expect(acme.os_version).toBe('');
    expect(acme.hostname).not.toBe(''); // this machine's, the documented fallback
  });
});
