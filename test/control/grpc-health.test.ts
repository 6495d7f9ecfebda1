// issue 18: the standard grpc.health.v1.Health service on the control API of
// a real supervisor (`bin/launcher run`, stand-in osqueryds), over the real
// mutual-TLS control socket: overall and per-registration service names,
// NOT_SERVING while a registration's osqueryd is down (stopped with SIGSTOP
// until the health check gives up on it), NOT_FOUND for an unknown
// registration, and a tenant certificate confined to its own registration.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LauncherProcess } from '../../bench/reliability/launcher-process.js';
import { Stage } from '../../bench/reliability/stage.js';
import { waitFor } from '../../bench/reliability/wait.js';
import { issueCertificates } from '../../src/control/certs-init.js';
import { healthApi, type HealthResponse } from '../../src/control/health.js';
import { FEATURES } from '../../src/control/features.js';
import { clientCredentials } from '../../src/control/tls.js';

let stage: Stage;
let sup: LauncherProcess;
let admin: grpc.Client;
let tenant: grpc.Client;
const stopped = new Set<number>();

type Check = (req: { service: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: HealthResponse) => void) => void;

function check(client: grpc.Client, service: string): Promise<HealthResponse> {
  return new Promise((resolve, reject) =>
    (client as unknown as { Check: Check }).Check({ service }, { deadline: Date.now() + 10_000 }, (err, res) =>
      err ? reject(err) : resolve(res!),
    ),
  );
}

async function checkCode(client: grpc.Client, service: string): Promise<grpc.status> {
  try {
    await check(client, service);
    return grpc.status.OK;
  } catch (err) {
    return (err as grpc.ServiceError).code;
  }
}

beforeAll(async () => {
  stage = await Stage.create({ prefix: 'hlt', registrations: ['kolide', 'acme'] });
  const certs = stage.control.certs;
  await issueCertificates({ dir: certs.dir, tenants: ['acme'] });
  const roles = JSON.parse(readFileSync(certs.rolesFile, 'utf8')) as Record<string, string>;
  sup = LauncherProcess.start({ ...stage.launcherOptions(), control: { certs, roles } });
  await sup.waitHealthy(['kolide', 'acme']);
  const target = `unix://${join(stage.dir, 'ctl.sock')}`;
  const channel = { 'grpc.ssl_target_name_override': 'localhost' };
  const Health = healthApi();
  admin = new Health(
    target,
    clientCredentials({ ca: certs.caCert, cert: join(certs.dir, 'admin.pem'), key: join(certs.dir, 'admin.key') }),
    channel,
  );
  tenant = new Health(
    target,
    clientCredentials({ ca: certs.caCert, cert: join(certs.dir, 'tenant-acme.pem'), key: join(certs.dir, 'tenant-acme.key') }),
    channel,
  );
}, 120_000);

afterAll(async () => {
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
  }
  admin?.close();
  tenant?.close();
  const end = await sup?.stop();
  expect(end?.code).toBe(0);
  expect((await stage?.cleanup()) ?? []).toEqual([]);
});

describe('grpc.health.v1.Health on the control API (issue 18)', () => {
  it('answers overall, the control API and each registration; unknown names are NOT_FOUND', async () => {
    expect((await check(admin, '')).status).toBe('SERVING');
    expect((await check(admin, 'launcher.v1.Launcher')).status).toBe('SERVING');
    expect((await check(admin, 'registration/kolide')).status).toBe('SERVING');
    expect((await check(admin, 'registration/acme')).status).toBe('SERVING');
    expect(await checkCode(admin, 'registration/nosuch')).toBe(grpc.status.NOT_FOUND);
    expect(await checkCode(admin, 'registration/Not Valid')).toBe(grpc.status.NOT_FOUND);
    expect(await checkCode(admin, 'something.else')).toBe(grpc.status.NOT_FOUND);
    expect((await sup.client.version()).features).toContain(FEATURES.grpcHealth);
  });

  it('a tenant certificate may query only its own registration', async () => {
    expect((await check(tenant, 'registration/acme')).status).toBe('SERVING');
    expect((await check(tenant, '')).status).toBe('SERVING');
    // Same denial whether the other registration exists or not.
    expect(await checkCode(tenant, 'registration/kolide')).toBe(grpc.status.PERMISSION_DENIED);
    expect(await checkCode(tenant, 'registration/nosuch')).toBe(grpc.status.PERMISSION_DENIED);
  });

  it('NOT_SERVING while the registration’s osqueryd is down, SERVING again after the restart; Watch streams the changes', async () => {
    const statuses: string[] = [];
    const watch = (admin as unknown as { Watch: (req: { service: string }) => grpc.ClientReadableStream<HealthResponse> }).Watch({
      service: 'registration/acme',
    });
    watch.on('data', (r: HealthResponse) => statuses.push(r.status));
    watch.on('error', () => undefined); // cancelled at the end
    await waitFor('the first Watch answer', () => statuses.length > 0, { timeoutMs: 10_000, intervalMs: 20 });
    expect(statuses[0]).toBe('SERVING');

    const acme = (await sup.client.getInstance('acme'))!;
    process.kill(acme.pid!, 'SIGSTOP'); // osqueryd stops answering: the health check fails, the supervisor restarts it
    stopped.add(acme.pid!);
    await waitFor('registration/acme NOT_SERVING', async () => (await check(admin, 'registration/acme')).status === 'NOT_SERVING', {
      timeoutMs: 30_000,
      intervalMs: 100,
      explain: () => sup.tail(20),
    });
    expect((await check(admin, 'registration/kolide')).status).toBe('SERVING');
    expect((await check(admin, '')).status).toBe('NOT_SERVING');
    expect((await check(tenant, '')).status).toBe('NOT_SERVING');
    await waitFor('registration/acme SERVING again', async () => (await check(admin, 'registration/acme')).status === 'SERVING', {
      timeoutMs: 60_000,
      intervalMs: 200,
      explain: () => sup.tail(20),
    });
    await waitFor('Watch saw NOT_SERVING then SERVING', () => statuses.join(',').includes('NOT_SERVING,SERVING'), {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    watch.cancel();
  });

  it('Watch on an unknown registration says SERVICE_UNKNOWN; a tenant Watch on another is denied', async () => {
    const Watch = (c: grpc.Client, service: string) =>
      (c as unknown as { Watch: (req: { service: string }) => grpc.ClientReadableStream<HealthResponse> }).Watch({ service });
    const unknown = Watch(admin, 'registration/nosuch');
    const first = await new Promise<string>((resolve, reject) => {
      unknown.once('data', (r: HealthResponse) => resolve(r.status));
      unknown.once('error', reject);
    });
    expect(first).toBe('SERVICE_UNKNOWN');
    unknown.on('error', () => undefined);
    unknown.cancel();
    const denied = Watch(tenant, 'registration/kolide');
    const code = await new Promise<number>((resolve) => {
      denied.on('data', () => resolve(-1));
      denied.on('error', (err: grpc.ServiceError) => resolve(err.code));
    });
    expect(code).toBe(grpc.status.PERMISSION_DENIED);
  });

  // Review: one tenant could take every Watch slot and lock admin and the other tenants out.
  it('one tenant may hold at most 16 Watches; admin still gets one', async () => {
    const Watch = (c: grpc.Client, service: string) =>
      (c as unknown as { Watch: (req: { service: string }) => grpc.ClientReadableStream<HealthResponse> }).Watch({ service });
    const first = (w: grpc.ClientReadableStream<HealthResponse>) =>
      new Promise<string>((resolve) => {
        w.once('data', (r: HealthResponse) => resolve(r.status));
        w.once('error', (err: grpc.ServiceError) => resolve(`error ${err.code}`));
      });
    const mine = Array.from({ length: 16 }, () => Watch(tenant, ''));
    try {
      for (const w of mine) expect(await first(w)).not.toMatch(/^error/);
      const extra = Watch(tenant, '');
      expect(await first(extra)).toBe(`error ${grpc.status.RESOURCE_EXHAUSTED}`);
      const adminWatch = Watch(admin, '');
      expect(await first(adminWatch)).not.toMatch(/^error/);
      adminWatch.on('error', () => undefined);
      adminWatch.cancel();
    } finally {
      for (const w of mine) {
        w.on('error', () => undefined);
        w.cancel();
      }
    }
  });
});
