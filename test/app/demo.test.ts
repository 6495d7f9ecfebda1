// Issue 8: `npm start` (launcher demo) on embedded defaults, driven as a user would:
// start it, use `launcher ctl` from a second "terminal", Ctrl-C.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { shortTempDir, waitFor } from '../helpers/tmp.js';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../..');
const tmp = shortTempDir('demo');
const root = join(tmp.dir, 'r');
let demo: ChildProcess | undefined;
let output = '';

afterAll(async () => {
  if (demo && demo.exitCode === null) {
    demo.kill('SIGKILL');
    await new Promise((r) => demo!.once('exit', r));
  }
  tmp.cleanup();
});

const ctl = (...args: string[]) =>
  run(process.execPath, [join(repo, 'bin/launcher'), 'ctl', ...args], {
    cwd: tmp.dir,
    env: { ...process.env, LAUNCHER_ROOT: root, LAUNCHER_CTL_CONFIG: '' },
    timeout: 30_000,
  });

/** `launcher demo` in the demo root, as `npm start` runs it; resolves once its guide is printed (or it exited). */
async function startDemo(boundMs: number): Promise<ChildProcess> {
  output = '';
  const child = spawn(process.execPath, [join(repo, 'bin/launcher'), 'demo'], {
    cwd: tmp.dir,
    env: { ...process.env, LAUNCHER_ROOT: root, LAUNCHER_LOG_FORMAT: 'json', LAUNCHER_OSQUERYD_PATH: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  demo = child;
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor(() => output.includes('Ctrl-C stops everything') || child.exitCode !== null, boundMs, 'the guide').catch((err: unknown) => {
    throw new Error(`${String(err)}\ndemo output:\n${output}`);
  });
  return child;
}

describe('launcher demo', () => {
  it('starts the device server, two instances and the control API, and prints a guide', async () => {
    demo = await startDemo(45_000);
    expect(demo.exitCode, output).toBeNull();
    expect(output).toMatch(/osqueryd: (no real osqueryd found .* using the stand-in .*osqueryd-sim|\/)/);
    expect(output).toContain('bin/launcher ctl list');
    expect(existsSync(join(root, 'ctl.json'))).toBe(true);
  });

  // issue 21: ~175 lines of logs buried the guide; it comes last, once both instances are up, and the terminal only
  // carries warnings (every line is in <root>/launcher.log, which the guide names).
  it('prints the guide last, after both instances are healthy, with only warnings above it', () => {
    const before = output.slice(0, output.indexOf('osquery-launcher demo'));
    const logLines = before.split('\n').filter((l) => l.startsWith('{'));
    for (const l of logLines) expect((JSON.parse(l) as { level: number }).level, l).toBeGreaterThanOrEqual(40);
    expect(output).toMatch(/Running now: kolide \(running, healthy\), acme \(running, healthy\)/);
    expect(output).toContain('logs:          r/launcher.log');
    expect(output).toContain('bin/launcher ctl enroll globex --secret-file r/globex.secret');
    const file = readFileSync(join(root, 'launcher.log'), 'utf8').trim().split('\n');
    expect(file.some((l) => (JSON.parse(l) as { level: number }).level === 30)).toBe(true);
  });

  // issue 21: `ctl logs` marked every stderr line `E `; glog writes info lines there too.
  // issue 18: `npm start` serves metrics on a free loopback port and the guide says where.
  it('the guide names the metrics endpoint, which answers for both instances', async () => {
    const url = /metrics: +(http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(output)?.[1];
    expect(url, output).toBeDefined();
    const body = await (await fetch(url!)).text();
    expect(body).toContain('launcher_registration_healthy{registration="kolide"} 1');
    expect(body).toContain('launcher_registration_healthy{registration="acme"} 1');
  });

  it("`ctl logs` marks osqueryd's lines with osquery's own severity", async () => {
    const { stdout } = await ctl('logs', 'acme');
    const lines = stdout.trim().split('\n');
    expect(
      lines.some((l) => /^I I\d{4} /.test(l)),
      stdout,
    ).toBe(true);
    for (const l of lines) expect(l, l).toMatch(/^([IWEF] [IWEF]\d{4} |- )/);
  });

  it('`ctl --json list` works with no options and shows both instances', async () => {
    const list = await waitFor(
      async () => {
        const { stdout } = await ctl('--json', 'list');
        const rows = JSON.parse(stdout) as Array<{ id: string; state: string; pid: number | null; run_id: string; healthy: boolean }>;
        return rows.length === 2 && rows.every((r) => r.healthy) ? rows : undefined;
      },
      45_000,
      'two healthy instances',
    );
    expect(list.map((r) => r.id).sort()).toEqual(['acme', 'kolide']);
    for (const r of list) {
      expect(r.state).toBe('running');
      expect(typeof r.pid).toBe('number');
      expect(r.run_id).toMatch(/^[0-9A-Z]{26}$/);
      // issue 21: one style on the wire: ISO-8601 times, unit-suffixed durations, snake_case keys.
      const raw = r as unknown as Record<string, unknown>;
      expect(raw.started_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(typeof raw.uptime_seconds).toBe('number');
      for (const k of Object.keys(raw)) expect(k).toMatch(/^[a-z0-9_]+$/);
    }
  });

  it('enrolls globex at runtime as the guide says', async () => {
    await ctl('enroll', 'globex', '--secret-file', join(root, 'globex.secret'));
    const rows = await waitFor(
      async () => {
        const { stdout } = await ctl('--json', 'list');
        const r = JSON.parse(stdout) as Array<{ id: string; healthy: boolean }>;
        return r.find((x) => x.id === 'globex')?.healthy ? r : undefined;
      },
      45_000,
      'globex healthy',
    );
    expect(rows).toHaveLength(3);
  });

  // issue 13: the device server's admin endpoints need the token the demo writes 0600 in its root; the guide uses it.
  it("the guide's curl commands carry the admin token; without it the device server answers 401", async () => {
    const tokenFile = join(root, 'devserver-admin.token');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const token = readFileSync(tokenFile, 'utf8').trim();
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(output).not.toContain(token);
    const lines = output
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('curl '));
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(l).toContain('-H "Authorization: Bearer $(cat r/devserver-admin.token)"');
    // issue 21: `| head` printed one 30 KB JSON line: the guide asks for one log per line.
    const logsLine = lines.find((l) => l.includes('/admin/logs'))!;
    expect(logsLine).toContain('format=ndjson');
    const logs = await waitFor(
      async () => {
        const { stdout } = await run('bash', ['-c', logsLine.replace(/\s+#.*$/, '')], { cwd: tmp.dir, timeout: 30_000 });
        const got = stdout
          .trim()
          .split('\n')
          .filter((l) => l !== '');
        return got.length > 1 ? got : undefined;
      },
      45_000,
      'logs delivered to the device server',
    );
    expect(logs.length).toBeLessThanOrEqual(10);
    for (const l of logs) expect(JSON.parse(l)).toMatchObject({ tenant: 'acme' });
    // Run the guide's own command, as a user would paste it, from the demo's directory.
    const queue = lines.find((l) => l.includes('/admin/queries'))!;
    const { stdout } = await run('bash', ['-c', queue], { cwd: tmp.dir, timeout: 30_000 });
    expect(JSON.parse(stdout)).toMatchObject({ name: expect.stringMatching(/^devq_/) });
    const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(queue)![1]!;
    const denied = await run(
      'curl',
      ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-XPOST', `${url}/admin/queries`, '-d', '{"tenant":"acme","sql":"select 1"}'],
      { timeout: 30_000 },
    );
    expect(denied.stdout).toBe('401');
  });

  it('Ctrl-C stops everything cleanly: exit 0, no osqueryd, no socket', async () => {
    const { stdout } = await ctl('--json', 'list');
    const pids = (JSON.parse(stdout) as Array<{ pid: number }>).map((r) => r.pid);
    const exited = new Promise<number | null>((r) => demo!.once('exit', (code) => r(code)));
    demo!.kill('SIGINT');
    expect(await exited).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    expect(readdirSync(join(root, 's')).filter((f) => !f.startsWith('.'))).toEqual([]);
    expect(existsSync(join(root, 'control.sock'))).toBe(false);
  });

  // issue 21: on a second start the guide still said to enroll globex, which then failed with exit 8.
  it('a second start describes what is there: globex is enrolled, so the guide does not say to enroll it', async () => {
    demo = await startDemo(90_000);
    expect(output).toMatch(/Running now: .*globex \(running/);
    expect(output).not.toContain('ctl enroll globex --secret-file');
    expect(output).toContain('bin/launcher ctl remove globex');
    const exited = new Promise<number | null>((r) => demo!.once('exit', (code) => r(code)));
    demo.kill('SIGINT');
    expect(await exited).toBe(0);
  }, 120_000);
});
