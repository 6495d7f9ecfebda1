// issue 13: `launcher run --check` said "valid" for configs that `run` rejects; the YAML config
// and the control API validated limits differently; an unknown osqueryd flag was accepted at
// enroll and in the config and then crash-looped; rejected control handshakes were not logged.
// Everything here goes through the real CLI (`bin/launcher run`, as separate processes), the real
// control API of a real supervisor, and the stand-in osqueryd (bin/osqueryd-sim).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tls from 'node:tls';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCertificates, type CertsInitResult } from '../../src/control/certs-init.js';
import { createCertificateAuthority, issueClientCertificate } from '../../src/control/certs.js';
import { ControlCallError } from '../../src/control/call-error.js';
import { ControlClient } from '../../src/control/client.js';
import * as rules from '../../src/registration.js';
import { FLAG_ALIASES, FLAG_TABLE } from '../../src/sim/flags.js';
import { osquerydFlagCatalog, parseHelpFlags, checkKnownFlags } from '../../src/runtime/known-flags.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';
import { capturingLogger } from '../control/fixtures.js';

const repo = resolve(import.meta.dirname, '../..');
const LAUNCHER = join(repo, 'bin/launcher');
const SIM = join(repo, 'bin/osqueryd-sim');

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the real CLI in its own process group; a run that does not end within the bound is stopped (and reaped). */
function cli(args: string[], boundMs = 60_000, extra: { env?: Record<string, string>; cwd?: string } = {}): Promise<Outcome> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [LAUNCHER, ...args], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...extra.env },
      ...(extra.cwd ? { cwd: extra.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const stop = setTimeout(() => {
      killGroup(child, 'SIGTERM');
      setTimeout(() => killGroup(child, 'SIGKILL'), 10_000).unref();
    }, boundMs);
    child.on('close', (code) => {
      clearTimeout(stop);
      done({ code, stdout, stderr });
    });
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

const tmp = shortTempDir('chk');
let certs: CertsInitResult;
let n = 0;

/** A config file from an object (real YAML, one key per line, so lines are meaningful). */
function writeConfig(raw: Record<string, unknown>): { path: string; text: string } {
  const path = join(tmp.dir, `c${n++}.yaml`);
  const text = stringify(raw);
  writeFileSync(path, text);
  return { path, text };
}

function base(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    root_directory: join(tmp.dir, `root${n}`),
    osqueryd_path: SIM,
    device_server: { url: 'http://127.0.0.1:9', insecure_transport: true },
    registrations: [{ id: 'kolide', enroll_secret: 'vendor-secret' }],
    control: { enabled: false },
    ...overrides,
  };
}

const control = (extra: Record<string, unknown> = {}) => ({
  enabled: true,
  ca: certs.caCert,
  cert: certs.serverCert,
  key: certs.serverKey,
  roles: { 'CN=admin': 'admin' },
  ...extra,
});

/** The `launcher run: ...` message of a failed run (stderr, without pino's JSON lines). */
function message(o: Outcome): string {
  return o.stderr
    .split('\n')
    .filter((l) => !l.startsWith('{'))
    .join('\n')
    .trim();
}

beforeAll(async () => {
  certs = await initCertificates({ dir: join(tmp.dir, 'pki'), tenants: [] });
});

afterAll(() => tmp.cleanup());

// issue 13: each config that `run` refuses, `--check` refuses too, with the same message.
describe('launcher run --check runs every start-up check (issue 13)', () => {
  const secretDir = () => join(tmp.dir, 'secrets');

  const cases: Array<[string, () => Record<string, unknown>, RegExp]> = [
    [
      'control enabled without certificates',
      () => base({ control: { enabled: true } }),
      /control\.enabled is true but control\.ca, control\.cert and control\.key are not all set/,
    ],
    [
      'a missing CA file',
      () => base({ control: control({ ca: join(tmp.dir, 'no-such-ca.pem') }) }),
      /cannot read CA certificate from .*no-such-ca\.pem: ENOENT/,
    ],
    ['a server key that is not a key', () => base({ control: control({ key: certs.caCert }) }), /invalid server TLS material/],
    [
      'a control listen address that is not one',
      () => base({ control: control({ listen: 'nowhere' }) }),
      /control listen address "nowhere": expected unix:\/\/\/path or host:port/,
    ],
    [
      'a missing enroll secret file',
      () => base({ registrations: [{ id: 'acme', enroll_secret_path: join(secretDir(), 'missing.secret') }] }),
      /registration acme: cannot read enroll secret file .*missing\.secret: ENOENT/,
    ],
    [
      'an empty enroll secret file',
      () => {
        mkdirSync(secretDir(), { recursive: true });
        writeFileSync(join(secretDir(), 'empty.secret'), '  \n');
        return base({ registrations: [{ id: 'acme', enroll_secret_path: join(secretDir(), 'empty.secret') }] });
      },
      /registration acme: enroll secret file .*empty\.secret is empty/,
    ],
    [
      'a missing device root PEM',
      () => base({ device_server: { url: 'https://127.0.0.1:9', root_pem: join(tmp.dir, 'no-roots.pem') } }),
      /cannot read root PEM .*no-roots\.pem/,
    ],
    [
      'a root directory that is a file',
      () => {
        writeFileSync(join(tmp.dir, 'a-file'), 'x');
        return base({ root_directory: join(tmp.dir, 'a-file') });
      },
      /root_directory .*a-file: .*a-file is not a directory/,
    ],
    [
      'an osquery flag the stand-in does not know',
      () => base({ registrations: [{ id: 'kolide', enroll_secret: 's', osquery_flags: ['--verbose', '--no_such_flag=1'] }] }),
      /registrations\.0\.osquery_flags\.1 \(line \d+\): unknown osqueryd flag --no_such_flag/,
    ],
  ];

  it.each(cases)('%s: --check exits non-zero with the message run gives', async (_label, make, expected) => {
    const { path } = writeConfig(make());
    const [check, run] = await Promise.all([cli(['run', '--config', path, '--check']), cli(['run', '--config', path])]);
    expect(run.code, run.stderr).not.toBe(0);
    expect(message(run)).toMatch(expected);
    expect(check.code).toBe(run.code);
    expect(message(check)).toBe(message(run));
    expect(check.stdout).not.toMatch(/is valid/);
  });

  it('a good config still says valid (known flags, secret file, certificates)', async () => {
    mkdirSync(secretDir(), { recursive: true });
    writeFileSync(join(secretDir(), 'good.secret'), 'tenant-secret\n');
    const { path } = writeConfig(
      base({
        control: control(),
        registrations: [
          { id: 'kolide', enroll_secret: 'v', osquery_flags: ['--verbose', '--logger_min_status=1', '--noutc', '--config_tls_refresh=10'] },
          { id: 'acme', enroll_secret_path: join(secretDir(), 'good.secret') },
        ],
      }),
    );
    const check = await cli(['run', '--config', path, '--check']);
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
    expect(check.stdout).toContain(`configuration ${path} is valid; osqueryd: ${SIM}`);
  });

  it('names the line of the unknown flag', async () => {
    const { path, text } = writeConfig(
      base({ registrations: [{ id: 'kolide', enroll_secret: 's', osquery_flags: ['--verbose', '--bogus_flag'] }] }),
    );
    const line = text.split('\n').findIndex((l) => l.includes('--bogus_flag')) + 1;
    const check = await cli(['run', '--config', path, '--check']);
    expect(check.code).toBe(2);
    expect(message(check)).toContain(
      `registrations.0.osquery_flags.1 (line ${line}): unknown osqueryd flag --bogus_flag: ${SIM} --help does not list it`,
    );
  });
});

// issue 13: the flag list comes from the binary's own --help.
// issue 21 review: checks made after parsing named the value but not the environment variable that set it, and a
// relative path in a variable was taken relative to the config file instead of the shell's directory.
describe('environment overrides in start-up checks (issue 21)', () => {
  it('a bad LAUNCHER_CONTROL_LISTEN is named in the error', async () => {
    const { path } = writeConfig(base({ control: control() }));
    const check = await cli(['run', '--config', path, '--check'], 60_000, { env: { LAUNCHER_CONTROL_LISTEN: 'bogus' } });
    expect(check.code).toBe(2);
    expect(message(check)).toMatch(/LAUNCHER_CONTROL_LISTEN=bogus \(environment\): control listen address "bogus"/);
  });

  it('a missing LAUNCHER_OSQUERYD_PATH is named in the error', async () => {
    const { path } = writeConfig(base());
    const check = await cli(['run', '--config', path, '--check'], 60_000, { env: { LAUNCHER_OSQUERYD_PATH: '/nonexistent/osqueryd' } });
    expect(check.code).toBe(2);
    expect(message(check)).toMatch(/LAUNCHER_OSQUERYD_PATH=\/nonexistent\/osqueryd \(environment\): osqueryd_path/);
  });

  it('a relative LAUNCHER_OSQUERYD_PATH is relative to the working directory, not to the config file', async () => {
    const { path } = writeConfig(base());
    const check = await cli(['run', '--config', path, '--check'], 60_000, {
      env: { LAUNCHER_OSQUERYD_PATH: 'bin/osqueryd-sim' },
      cwd: repo,
    });
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
    expect(check.stdout).toContain(`osqueryd: ${SIM}`);
  });
});

describe('osqueryd flags from --help (issue 13)', () => {
  it("the stand-in's --help lists every flag it accepts, in osqueryd's format", async () => {
    const help = await new Promise<string>((done) => {
      const child = spawn(SIM, ['--help'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      child.on('close', () => done(out));
    });
    expect(help).toMatch(/^ {4}--flagfile VALUE {2}/m);
    const listed = parseHelpFlags(help);
    const accepted = [
      ...FLAG_TABLE.filter((d) => d.name !== 'help' && d.name !== 'version').map((d) => d.name),
      ...Object.keys(FLAG_ALIASES),
    ];
    expect([...listed].sort()).toEqual(accepted.sort());
  });

  it('reads --help once per binary, again when the binary changes, and accepts with a warning when it cannot be read', async () => {
    const dir = join(tmp.dir, 'bins');
    mkdirSync(dir, { recursive: true });
    const fake = join(dir, 'osqueryd');
    const counter = join(dir, 'count');
    const script = (flags: string[]) =>
      `#!/bin/sh\necho x >> ${counter}\n[ "$1" = "--help" ] || exit 1\n${flags.map((f) => `echo "    --${f} VALUE  a flag"`).join('\n')}\n`;
    writeFileSync(fake, script(['a1', 'a2', 'a3', 'a4', 'a5']));
    chmodSync(fake, 0o755);
    const reads = () => (existsSync(counter) ? readFileSync(counter, 'utf8').split('\n').filter(Boolean).length : 0);
    await checkKnownFlags(fake, ['--a1', '--noa2=1'], 'test');
    await checkKnownFlags(fake, ['a3'], 'test');
    expect(reads()).toBe(1);
    await expect(checkKnownFlags(fake, ['--b1'], 'registration x osquery flags')).rejects.toMatchObject({
      code: 'E_INVALID_ARGUMENT',
      message: `registration x osquery flags: unknown osqueryd flag --b1: ${fake} --help does not list it (osqueryd would exit at every launch)`,
    });
    // An upgraded binary (new size and mtime) is read again.
    writeFileSync(fake, script(['a1', 'a2', 'a3', 'a4', 'a5', 'b1']));
    await checkKnownFlags(fake, ['--b1'], 'test');
    expect(reads()).toBe(2);
    // A binary whose --help lists nothing: accepted, with a warning.
    writeFileSync(fake, '#!/bin/sh\nexit 3\n');
    const { logger, lines } = capturingLogger();
    await checkKnownFlags(fake, ['--anything'], 'test', logger);
    expect(lines).toEqual([
      expect.objectContaining({ level: 40, msg: 'cannot check osquery flags against osqueryd --help; accepting them' }),
    ]);
    expect(await osquerydFlagCatalog(join(dir, 'missing'))).toMatchObject({ kind: 'unavailable' });
  });
});

// issue 13: a real supervisor: the control API applies the same rules as the YAML file, refuses
// unknown flags at enroll, and its log shows rejected handshakes with the presented subject.
describe('a running supervisor (issue 13)', () => {
  let supervisor: ChildProcess | undefined;
  let exited: Promise<number | null> | undefined;
  let out = '';
  let client: ControlClient;
  const socket = () => join(tmp.dir, 'live.sock');

  beforeAll(async () => {
    const { path } = writeConfig(base({ registrations: [], control: control({ listen: `unix://${socket()}` }) }));
    supervisor = spawn(process.execPath, [LAUNCHER, 'run', '--config', path], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    supervisor.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    supervisor.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    exited = new Promise((done) => supervisor!.on('close', (code) => done(code)));
    client = new ControlClient({
      target: `unix://${socket()}`,
      ca: certs.caCert,
      cert: join(certs.dir, 'admin.pem'),
      key: join(certs.dir, 'admin.key'),
    });
    await waitFor(() => client.listInstances().then(() => true), 30_000, 'the control API');
  });

  afterAll(async () => {
    client?.close();
    if (supervisor) killGroup(supervisor, 'SIGTERM');
    await exited;
  });

  async function refusal(p: Promise<unknown>): Promise<ControlCallError> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ControlCallError);
    return err as ControlCallError;
  }

  it('AddRegistration refuses an unknown osqueryd flag with INVALID_ARGUMENT naming it; a known one is accepted', async () => {
    const err = await refusal(client.addRegistration({ id: 'globex', enrollSecret: 's', osqueryFlags: ['--verbose', '--no_such_flag=1'] }));
    expect(err.failure).toBe('invalid-argument');
    expect(err.message).toContain(
      `registration globex osquery flags: unknown osqueryd flag --no_such_flag: ${SIM} --help does not list it`,
    );
    expect(await client.listInstances()).toEqual([]);

    const added = await client.addRegistration({ id: 'initech', enrollSecret: 's', osqueryFlags: ['--verbose'] });
    expect(added.id).toBe('initech');
    await client.removeRegistration('initech');
  });

  // The same bad value, in the YAML file (`launcher run --check`) and through AddRegistration.
  it.each([
    ['memory_mb 50', { limits: { memory_mb: 50 } }, 'limits.memory_mb', rules.memoryMbProblem(50)!],
    ['memory_mb 200000', { limits: { memory_mb: 200_000 } }, 'limits.memory_mb', rules.memoryMbProblem(200_000)!],
    ['cpu_percent 150', { limits: { cpu_percent: 150 } }, 'limits.cpu_percent', rules.cpuPercentProblem(150)!],
    ['a 20,000-byte secret', { enroll_secret: 'x'.repeat(20_000) }, 'enroll_secret', rules.enrollSecretProblem('x'.repeat(20_000))!],
    ['a flag with a tab', { osquery_flags: ['--verbose=a\tb'] }, 'osquery_flags.0', rules.osqueryFlagProblem('--verbose=a\tb')!],
  ])('%s gets the same rule message from the YAML file and from AddRegistration', async (_label, fields, field, rule) => {
    const { path } = writeConfig(base({ registrations: [{ id: 'acme', enroll_secret: 's', ...fields }] }));
    const check = await cli(['run', '--config', path, '--check']);
    expect(check.code).toBe(2);
    expect(message(check)).toMatch(
      new RegExp(`registrations\\.0\\.${field.replace('.', '\\.')} \\(line \\d+\\): ${rule.replace(/[.()\\[\]*+?^$|]/g, '\\$&')}`),
    );

    const api = fields as { limits?: { memory_mb?: number; cpu_percent?: number }; enroll_secret?: string; osquery_flags?: string[] };
    const err = await refusal(
      client.addRegistration({
        id: 'acme',
        enrollSecret: api.enroll_secret ?? 's',
        ...(api.limits ? { limits: api.limits } : {}),
        ...(api.osquery_flags ? { osqueryFlags: api.osquery_flags } : {}),
      }),
    );
    expect(err.failure).toBe('invalid-argument');
    expect(err.message).toContain(rule);
    expect(err.message).toMatch(new RegExp(`${field.replace('.', '\\.')}\\b`));
  });

  it("a rejected handshake shows in the supervisor's log with the presented subject", async () => {
    const otherCa = await createCertificateAuthority();
    const intruder = await issueClientCertificate(otherCa, 'intruder');
    await new Promise<void>((done) => {
      const s = tls.connect({
        path: socket(),
        servername: 'localhost',
        ca: readFileSync(certs.caCert),
        cert: intruder.cert,
        key: intruder.key,
        ALPNProtocols: ['h2'],
      });
      s.on('data', () => undefined);
      s.on('error', () => done());
      s.on('close', () => done());
    });
    const line = await waitFor(
      () =>
        out
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => l.msg === 'control API TLS handshake rejected'),
      10_000,
      'the handshake line in the supervisor log',
    );
    expect(line).toMatchObject({
      level: 40,
      subject: 'CN=intruder',
      peer: 'unix socket',
      reason: expect.stringMatching(/^client certificate rejected: /),
    });
  });
});
