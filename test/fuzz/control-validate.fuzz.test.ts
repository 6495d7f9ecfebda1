// Issue 9 (fuzz): request validation of the control API. Each validate.* function returns a value
// that honours its rule or throws a LauncherError (E_INVALID_ARGUMENT / E_INVALID_REGISTRATION_ID)
// with a bounded message that never echoes an enroll secret; never another exception. A share of
// the inputs also goes through a real control server (gRPC over mutual TLS on a Unix socket):
// invalid requests are answered INVALID_ARGUMENT (or NOT_FOUND) and never reach the target, valid
// ones reach it already validated, and the server keeps serving.
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LauncherError } from '../../src/errors.js';
import { initCertificates } from '../../src/control/certs-init.js';
import { ControlCallError } from '../../src/control/call-error.js';
import { ControlClient } from '../../src/control/client.js';
import { startControlServer, type ControlServer } from '../../src/control/server.js';
import type { AddRegistrationInput, ControlTarget, InstanceInfo } from '../../src/control/target.js';
import * as validate from '../../src/control/validate.js';
import { FuzzRun, fuzzIterations, type Rng } from '../helpers/fuzz.js';
import { shortTempDir } from '../helpers/tmp.js';

const DIRECT = fuzzIterations(4000);
const WIRE = fuzzIterations(80);
const timeoutFor = (n: number) => 60_000 + n * 50;

const SECRET_MARK = 'S3CRET-MARK';

function randomId(rng: Rng): string {
  return rng.weighted<() => string>([
    [3, () => rng.pick(['acme', 'a', '0', 'tenant-1', 't_2', 'a'.repeat(63)])],
    [3, () => rng.pick(['', '.', '..', '../x', 'a/b', '/abs', 'A', 'a'.repeat(64), 'a\0', 'é', '\ud800', '-a', ' a', 'a\n'])],
    [2, () => rng.string(rng.range(0, 70))],
    [2, () => Array.from({ length: rng.range(1, 70) }, () => rng.pick([...'abcxyz019_-.'])).join('')],
  ])();
}

function randomNumber(rng: Rng): number {
  return rng.pick([
    0,
    1,
    -1,
    15,
    16,
    100,
    1_000,
    10_000,
    10_001,
    300_000,
    300_001,
    1_048_576,
    1_048_577,
    2 ** 31,
    2 ** 32 - 1,
    1.5,
    -0,
    NaN,
    Infinity,
    -Infinity,
    Number.MAX_SAFE_INTEGER,
    rng.int(2 ** 32),
  ]);
}

function randomFlag(rng: Rng): string {
  return rng.weighted<() => string>([
    [3, () => rng.pick(['--verbose', '--logger_min_status=1', '--a=b=c', `--x=${'v'.repeat(1_010)}`])],
    [2, () => rng.pick(['verbose', '-v', '--', '--=x', '--a b', '--a=\u0000', '--a=\n', '--a=\u007f', `--${'n'.repeat(1_100)}`, '--ü'])],
    [1, () => `--${rng.string(rng.range(0, 20))}`],
  ])();
}

function randomAdd(rng: Rng): AddRegistrationInput {
  const input: AddRegistrationInput = { id: randomId(rng) };
  const source = rng.int(4);
  if (source === 0 || source === 2)
    input.enrollSecret = rng.pick([
      '',
      SECRET_MARK,
      `${SECRET_MARK}${'s'.repeat(4_100)}`,
      `${SECRET_MARK}\u00e9`.repeat(rng.range(1, 600)),
    ]);
  if (source === 1 || source === 2)
    input.enrollSecretPath = rng.pick(['/etc/secret', 'relative/secret', '', '/a\0b', `/${'p'.repeat(5_000)}`, `/ok/${rng.string(5)}`]);
  if (rng.bool(0.5)) {
    input.limits = {};
    if (rng.bool()) input.limits.memory_mb = randomNumber(rng);
    if (rng.bool()) input.limits.cpu_percent = randomNumber(rng);
  }
  if (rng.bool(0.6)) input.osqueryFlags = Array.from({ length: rng.pick([0, 1, 3, 64, 65]) }, () => randomFlag(rng));
  return input;
}

/** Throws unless `err` is a validation LauncherError with a bounded message that hides secrets. */
function checkRefusal(err: unknown): string {
  if (!(err instanceof LauncherError))
    throw new Error(`threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`, { cause: err });
  if (err.code !== 'E_INVALID_ARGUMENT' && err.code !== 'E_INVALID_REGISTRATION_ID')
    throw new Error(`unexpected code ${err.code}: ${err.message}`);
  if (err.message.length === 0 || err.message.length > 600) throw new Error(`message of ${err.message.length} characters`);
  if (err.message.includes(SECRET_MARK)) throw new Error(`message echoes the enroll secret: ${err.message}`);
  return err.code;
}

/** Throws unless an accepted AddRegistrationInput honours every rule. */
function checkAccepted(input: AddRegistrationInput): void {
  expect(validate.REGISTRATION_ID_PATTERN.test(input.id)).toBe(true);
  expect((input.enrollSecret === undefined) !== (input.enrollSecretPath === undefined)).toBe(true);
  if (input.enrollSecret !== undefined) expect(Buffer.byteLength(input.enrollSecret)).toBeLessThanOrEqual(validate.MAX_SECRET_BYTES);
  if (input.enrollSecretPath !== undefined) {
    expect(isAbsolute(input.enrollSecretPath)).toBe(true);
    expect(input.enrollSecretPath.includes('\0')).toBe(false);
  }
  for (const f of input.osqueryFlags ?? []) {
    expect(f.length).toBeLessThanOrEqual(validate.MAX_FLAG_LENGTH);
    expect(/[\x00-\x1f\x7f]/.test(f)).toBe(false);
  }
  expect((input.osqueryFlags ?? []).length).toBeLessThanOrEqual(validate.MAX_OSQUERY_FLAGS);
}

describe('fuzz: control API request validation', () => {
  it(
    `validates ${DIRECT} random requests without throwing anything but a validation error`,
    () => {
      const run = new FuzzRun('control.validate.direct');
      for (let i = 0; i < DIRECT; i++) {
        const kind = run.rng.pick([
          'registrationId',
          'sql',
          'queryTimeoutMs',
          'historyLimit',
          'limits',
          'osqueryFlags',
          'addRegistration',
        ] as const);
        let input: unknown;
        const outcome = run.check({ kind, input: () => input }, () => {
          try {
            switch (kind) {
              case 'registrationId': {
                const id = (input = randomId(run.rng));
                expect(validate.registrationId(id)).toBe(id);
                expect(validate.REGISTRATION_ID_PATTERN.test(id)).toBe(true);
                break;
              }
              case 'sql': {
                const sql = (input = run.rng.pick([
                  'select 1',
                  '',
                  '   ',
                  '\n\t',
                  'x'.repeat(65_536),
                  'x'.repeat(65_537),
                  'é'.repeat(32_769),
                  run.rng.string(run.rng.range(0, 50)),
                ]));
                expect(validate.sql(sql)).toBe(sql);
                expect(Buffer.byteLength(sql)).toBeLessThanOrEqual(validate.MAX_SQL_BYTES);
                break;
              }
              case 'queryTimeoutMs': {
                const v = validate.queryTimeoutMs((input = randomNumber(run.rng)) as number);
                expect(Number.isInteger(v) && v >= 1 && v <= validate.MAX_QUERY_TIMEOUT_MS).toBe(true);
                break;
              }
              case 'historyLimit': {
                const v = validate.historyLimit((input = randomNumber(run.rng)) as number);
                expect(Number.isInteger(v) && v >= 1 && v <= validate.MAX_HISTORY_LIMIT).toBe(true);
                break;
              }
              case 'limits':
                validate.limits((input = randomAdd(run.rng).limits) as AddRegistrationInput['limits']);
                break;
              case 'osqueryFlags':
                validate.osqueryFlags((input = Array.from({ length: run.rng.range(0, 4) }, () => randomFlag(run.rng))) as string[]);
                break;
              case 'addRegistration':
                checkAccepted(validate.addRegistration((input = randomAdd(run.rng)) as AddRegistrationInput));
                break;
            }
            return 'accepted';
          } catch (err) {
            if ((err as Error).name === 'AssertionError') throw err;
            return checkRefusal(err);
          }
        });
        run.count(`${kind}:${outcome}`);
      }
      expect(run.finish().failures).toBe(0);
    },
    timeoutFor(DIRECT / 50),
  );
});

describe('fuzz: control API requests through a real server', () => {
  let tmp: ReturnType<typeof shortTempDir>;
  let server: ControlServer;
  let client: ControlClient;
  let clientOptions: ConstructorParameters<typeof ControlClient>[0];
  const received: Array<{ method: string; args: unknown[] }> = [];
  const inst = (id: string): InstanceInfo => ({
    id,
    state: 'running',
    pid: 1,
    run_id: 'r1',
    started_at: 1,
    connected_at: 1,
    uptime_seconds: 1,
    healthy: true,
    restarts: 0,
    last_error: null,
    limits: { memory_mb: null, cpu_percent: null, mode: 'none' },
    buffers: { result_count: 0, status_count: 0, bytes: 0, dropped: 0 },
    osqueryd_path: null,
    osqueryd_version: null,
    device: { state: 'enrolling', error: null, since: null },
    device_url: 'https://device.example',
    isolation: { mode: 'none', reason: null, disabled_tables: '' },
  });
  const target: ControlTarget = {
    version: () => ({ serverVersion: '0.0.0-fuzz', apiVersion: '1', features: [] }),
    health: () => ({ healthy: true, instances: [{ id: 'acme', healthy: true, state: 'running' }] }),
    listInstances: () => [inst('acme')],
    getInstance: (id) => (id === 'acme' ? inst('acme') : undefined),
    addRegistration: async (input) => {
      received.push({ method: 'addRegistration', args: [input] });
      return inst(input.id);
    },
    removeRegistration: async (id) => {
      received.push({ method: 'removeRegistration', args: [id] });
    },
    restartInstance: async (id) => inst(id),
    query: async (id, sql, timeoutMs) => {
      received.push({ method: 'query', args: [id, sql, timeoutMs] });
      return [{ one: '1' }];
    },
    listQuarantine: (ids) => {
      received.push({ method: 'listQuarantine', args: [ids] });
      return [];
    },
    releaseQuarantine: async (id, query) => {
      received.push({ method: 'releaseQuarantine', args: [id, query] });
      return [];
    },
    history: (id, limit) => {
      received.push({ method: 'history', args: [id, limit] });
      return [];
    },
    output: () => undefined,
  };

  beforeAll(async () => {
    tmp = shortTempDir('cv');
    const certs = await initCertificates({ dir: join(tmp.dir, 'pki'), tenants: ['acme'] });
    const roles = JSON.parse(readFileSync(certs.rolesFile, 'utf8')) as Record<string, string>;
    server = await startControlServer({
      target,
      listen: `unix://${join(tmp.dir, 'c.sock')}`,
      ca: certs.caCert,
      cert: certs.serverCert,
      key: certs.serverKey,
      roles,
    });
    const admin = certs.identities.find((i) => i.role === 'admin')!;
    clientOptions = { target: server.address, ca: certs.caCert, cert: admin.cert, key: admin.key };
    client = new ControlClient(clientOptions);
  });

  afterAll(async () => {
    client?.close();
    await server?.close();
    tmp?.cleanup();
  });

  it('answers an out-of-range query timeout with INVALID_ARGUMENT, even on a fresh connection', async () => {
    // The client's deadline is the timeout plus a margin; past 2^31-1 ms Node fires timers after 1 ms,
    // so the call used to fail as "timed out: Deadline exceeded" before the server could answer.
    const fresh = new ControlClient(clientOptions);
    try {
      for (const n of [2_592_802_789, 2 ** 32 - 1, 2 ** 31 - 4_000, 300_001]) {
        await expect(fresh.query('acme', `select '${'x'.repeat(70_000)}'`, n)).rejects.toMatchObject({ failure: 'invalid-argument' });
      }
    } finally {
      fresh.close();
    }
  });

  it(
    `answers ${WIRE} fuzzed requests with a result or INVALID_ARGUMENT / NOT_FOUND, and never passes bad input on`,
    async () => {
      const run = new FuzzRun('control.validate.wire');
      const u32 = (n: number) => (Number.isInteger(n) && n >= 0 && n < 2 ** 32 ? n : run.rng.int(2 ** 32));
      for (let i = 0; i < WIRE; i++) {
        const method = run.rng.pick(['add', 'remove', 'query', 'history'] as const);
        const before = received.length;
        const input =
          method === 'add'
            ? (() => {
                const a = randomAdd(run.rng);
                if (a.limits)
                  a.limits = {
                    ...(a.limits.memory_mb !== undefined ? { memory_mb: u32(a.limits.memory_mb) } : {}),
                    ...(a.limits.cpu_percent !== undefined ? { cpu_percent: u32(a.limits.cpu_percent) } : {}),
                  };
                return a;
              })()
            : {
                id: run.rng.bool(0.4) ? 'acme' : randomId(run.rng),
                sql: run.rng.pick(['select 1', '', 'x'.repeat(70_000)]),
                n: u32(randomNumber(run.rng)),
              };
        const outcome = await run.checkAsync({ method, input }, async () => {
          try {
            if (method === 'add') await client.addRegistration(input as AddRegistrationInput);
            else if (method === 'remove') await client.removeRegistration((input as { id: string }).id);
            else if (method === 'query')
              await client.query((input as { id: string }).id, (input as { sql: string }).sql, (input as { n: number }).n);
            else await client.history((input as { id: string }).id, (input as { n: number }).n);
          } catch (err) {
            if (!(err instanceof ControlCallError))
              throw new Error(`client threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`, { cause: err });
            if (err.failure !== 'invalid-argument' && err.failure !== 'not-found')
              throw new Error(`failure ${err.failure}: ${err.message}`);
            if (err.message.includes(SECRET_MARK)) throw new Error(`error echoes the enroll secret: ${err.message}`);
            if (received.length !== before) throw new Error(`a refused ${method} reached the target`);
            return err.failure;
          }
          // Accepted: what reached the target is valid.
          const got = received.slice(before);
          expect(got.length).toBe(1);
          const args = got[0]!.args;
          if (method === 'add') checkAccepted(args[0] as AddRegistrationInput);
          else expect(validate.REGISTRATION_ID_PATTERN.test(args[0] as string)).toBe(true);
          if (method === 'query') {
            expect(Buffer.byteLength(args[1] as string)).toBeLessThanOrEqual(validate.MAX_SQL_BYTES);
            expect(args[2] as number).toBeLessThanOrEqual(validate.MAX_QUERY_TIMEOUT_MS);
          }
          return 'accepted';
        });
        run.count(`${method}:${outcome}`);
      }
      expect(run.finish().failures).toBe(0);
      expect((await client.health()).healthy).toBe(true);
    },
    timeoutFor(WIRE),
  );
});
