import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCertificates } from '../../src/control/certs-init.js';
import type { ControlClient } from '../../src/control/client.js';
import type { ControlServer } from '../../src/control/server.js';
import { FakeTarget, capturingLogger, clientFor, makePki, startServer, type Pki, failure } from './fixtures.js';

describe('control API authorization (mTLS subjects → roles)', () => {
  let pki: Pki;
  let server: ControlServer;
  let target: FakeTarget;
  let log: ReturnType<typeof capturingLogger>;
  const clients: ControlClient[] = [];
  const client = (name: string): ControlClient => {
    const c = clientFor(pki, server, name);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    pki = await makePki();
    // A certificate from the right CA whose subject has no role.
    await issueCertificates({ dir: pki.dir, admins: ['stranger'] });
    delete pki.roles['CN=stranger'];
    // launcher.yaml writes subjects without "CN=": both forms work.
    pki.roles['tenant-globex'] = pki.roles['CN=tenant-globex'] as string;
    delete pki.roles['CN=tenant-globex'];
    target = new FakeTarget();
    log = capturingLogger();
    server = await startServer(pki, target, { logger: log.logger });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.close();
    pki?.cleanup();
  });

  it('admin lists both instances and sees everything', async () => {
    const admin = client('admin');
    const list = await admin.listInstances();
    expect(list.map((i) => i.id).sort()).toEqual(['acme', 'globex']);
    expect((await admin.getInstance('globex')).id).toBe('globex');
    const health = await admin.health();
    expect(health.instances.map((i) => i.id).sort()).toEqual(['acme', 'globex']);
    const v = await admin.version();
    expect(v).toMatchObject({ apiVersion: 'v1', serverVersion: '0.1.0-test', callerSubject: 'CN=admin', callerRole: 'admin' });
    expect(v.features).toEqual(expect.arrayContaining(['stream-output', 'query', 'history', 'fake-target']));
  });

  it('instances round-trip through the API unchanged (one mapping both ways)', async () => {
    const got = await client('admin').getInstance('acme');
    expect(got).toEqual(target.getInstance('acme'));
    const history = await client('admin').history('acme', 5);
    expect(history).toEqual(target.history('acme', 5));
    target.put({
      ...target.getInstance('globex')!,
      pid: null,
      run_id: null,
      started_at: null,
      connected_at: null,
      last_error: 'boom',
      osqueryd_version: null,
      limits: { memory_mb: null, cpu_percent: null, mode: 'none' },
    });
    expect(await client('admin').getInstance('globex')).toEqual(target.getInstance('globex'));
  });

  it('tenant acme sees only acme', async () => {
    const acme = client('tenant-acme');
    expect((await acme.listInstances()).map((i) => i.id)).toEqual(['acme']);
    expect((await acme.getInstance('acme')).id).toBe('acme');
    expect((await acme.health()).instances.map((i) => i.id)).toEqual(['acme']);
    expect(await acme.query('acme', 'select 1')).toHaveLength(2);
    expect(await acme.history('acme')).toHaveLength(2);
    expect((await acme.restartInstance('acme')).id).toBe('acme');
    expect(await acme.version()).toMatchObject({ callerSubject: 'CN=tenant-acme', callerRole: 'tenant:acme' });
  });

  it('tenant acme gets the same PERMISSION_DENIED for globex and for an id that does not exist', async () => {
    const acme = client('tenant-acme');
    const other = await failure(acme.getInstance('globex'));
    const missing = await failure(acme.getInstance('no-such-tenant'));
    expect(other.failure).toBe('permission-denied');
    expect(missing.failure).toBe('permission-denied');
    expect(missing.message).toBe(other.message);
    expect(other.message).not.toContain('globex');
    for (const call of [
      acme.query('globex', 'select 1'),
      acme.history('globex'),
      acme.restartInstance('globex'),
      acme.restartInstance('no-such-tenant'),
    ]) {
      const err = await failure(call);
      expect(err.failure).toBe('permission-denied');
      expect(err.message).toBe(other.message);
    }
    const stream = failure(
      (async () => {
        for await (const _ of acme.streamOutput('globex', { follow: false })) void _;
      })(),
    );
    expect((await stream).message).toBe(other.message);
  });

  it('a role keyed by the bare common name works like CN=…', async () => {
    expect((await client('tenant-globex').listInstances()).map((i) => i.id)).toEqual(['globex']);
  });

  it('tenants may not add or remove registrations (not even their own)', async () => {
    const acme = client('tenant-acme');
    const add = await failure(acme.addRegistration({ id: 'evil', enrollSecret: 's3cret' }));
    expect(add.failure).toBe('permission-denied');
    expect(add.message).toMatch(/admin only/);
    expect((await failure(acme.removeRegistration('acme'))).failure).toBe('permission-denied');
    expect((await failure(acme.removeRegistration('globex'))).failure).toBe('permission-denied');
    expect(target.added).toEqual([]);
    expect(target.getInstance('acme')).toBeDefined();
  });

  it('a subject without a role is denied on every call', async () => {
    const stranger = client('stranger');
    // Even a malformed request is refused for who sent it, not for what it contains.
    for (const call of [
      stranger.version(),
      stranger.listInstances(),
      stranger.health(),
      stranger.getInstance('acme'),
      stranger.getInstance('NOT VALID'),
      stranger.addRegistration({ id: 'x' }),
    ]) {
      const err = await failure(call);
      expect(err.failure).toBe('permission-denied');
      expect(err.message).toContain('CN=stranger has no role');
    }
  });

  it('every denied call is logged at warn with subject and method, without secrets', () => {
    const denied = log.lines.filter((l) => l.msg === 'control call denied');
    expect(denied.every((l) => l.level === 40)).toBe(true);
    const seen = denied.map((l) => `${String(l.subject)} ${String(l.method)}`);
    expect(seen).toEqual(
      expect.arrayContaining([
        'CN=tenant-acme GetInstance',
        'CN=tenant-acme Query',
        'CN=tenant-acme AddRegistration',
        'CN=tenant-acme RemoveRegistration',
        'CN=tenant-acme StreamOutput',
        'CN=stranger GetVersion',
        'CN=stranger ListInstances',
      ]),
    );
    expect(JSON.stringify(log.lines)).not.toContain('s3cret');
  });

  it('admin adds and removes registrations; target errors map to status codes', async () => {
    const admin = client('admin');
    const added = await admin.addRegistration({
      id: 'initech',
      enrollSecret: 's3cret',
      limits: { memory_mb: 256 },
      osqueryFlags: ['--verbose', '--logger_min_status=1'],
    });
    expect(added).toMatchObject({ id: 'initech', state: 'starting', limits: { memory_mb: 256, cpu_percent: null, mode: 'watchdog' } });
    expect(target.added[0]).toEqual({
      id: 'initech',
      enrollSecret: 's3cret',
      limits: { memory_mb: 256 },
      osqueryFlags: ['--verbose', '--logger_min_status=1'],
    });
    expect((await failure(admin.addRegistration({ id: 'initech', enrollSecretPath: '/etc/secret' }))).failure).toBe('already-exists');
    await admin.removeRegistration('initech');
    expect((await failure(admin.removeRegistration('initech'))).failure).toBe('not-found');
    expect((await failure(admin.getInstance('initech'))).failure).toBe('not-found');
  });
  it('quarantine (issue 16): a tenant lists and releases only its own; admin sees all; bad queries are refused', async () => {
    const entry = (id: string, name: string) => ({
      registration_id: id,
      kind: 'scheduled',
      name,
      sql_hash: 'ab'.repeat(32),
      sql: "select 'x'",
      query_id: name,
      reason: '2 incidents',
      incidents: 2,
      quarantined_at: 1_800_000_000_000,
      expires_at: 1_800_600_000_000,
      release_handle: name,
    });
    target.quarantined = [entry('acme', 'boom'), entry('globex', 'secret_query')];
    const admin = client('admin');
    const acme = client('tenant-acme');
    expect((await admin.version()).features).toContain('quarantine');
    expect((await admin.listQuarantine()).map((q) => q.registration_id).sort()).toEqual(['acme', 'globex']);
    expect(await admin.listQuarantine('globex')).toEqual([entry('globex', 'secret_query')]);
    expect(await acme.listQuarantine()).toEqual([entry('acme', 'boom')]);
    expect(await acme.listQuarantine('acme')).toEqual([entry('acme', 'boom')]);
    const denied = await failure(acme.getInstance('globex'));
    for (const call of [
      acme.listQuarantine('globex'),
      acme.listQuarantine('no-such-tenant'),
      acme.releaseQuarantine('globex', 'secret_query'),
      acme.releaseQuarantine('no-such-tenant', 'x'),
    ]) {
      const err = await failure(call);
      expect(err.failure).toBe('permission-denied');
      expect(err.message).toBe(denied.message);
    }
    expect(target.quarantined).toHaveLength(2);
    for (const bad of ['', '   ', 'x'.repeat(70_000)])
      expect((await failure(acme.releaseQuarantine('acme', bad))).failure).toBe('invalid-argument');
    expect((await failure(acme.releaseQuarantine('acme', 'secret_query'))).failure).toBe('not-found');
    expect((await failure(admin.listQuarantine('Bad Id'))).failure).toBe('invalid-argument');
    expect(await acme.releaseQuarantine('acme', 'boom')).toEqual([entry('acme', 'boom')]);
    expect(target.quarantined).toEqual([entry('globex', 'secret_query')]);
  });
});
