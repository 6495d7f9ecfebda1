// Issue 21: the CLI as a newcomer meets it, through the real command (bin/launcher): help and usage exit codes,
// JSON errors, the environment named in errors, NO_COLOR, version/build information, the osqueryd search list.
import { afterAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { existsSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { shortTempDir, waitFor } from '../helpers/tmp.js';

const repo = resolve(import.meta.dirname, '../..');
const tmp = shortTempDir('cli21');
afterAll(() => tmp.cleanup());

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run bin/launcher to completion (bounded), whatever its exit code. */
function launcher(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [join(repo, 'bin/launcher'), ...args],
      { cwd: tmp.dir, env: { ...process.env, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

describe('launcher CLI conventions (issue 21)', () => {
  // issue 21: `dev-server --help` exited 1; every --help exits 0 and prints usage on stdout.
  it('every --help exits 0', async () => {
    for (const args of [
      ['--help'],
      ['dev-server', '--help'],
      ['dev-server', '-h'],
      ['run', '--help'],
      ['demo', '--help'],
      ['ctl', '--help'],
      ['ctl', 'list', '--help'],
      ['certs', '--help'],
      ['doctor', '--help'],
      ['version', '--help'],
    ]) {
      const r = await launcher(args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/Usage: launcher/);
    }
  });

  // issue 21: usage errors exited 1 though `ctl --help` documents 2.
  it('usage errors exit 2 everywhere', async () => {
    for (const args of [
      ['nope'],
      ['run'],
      ['ctl', '--bogus'],
      ['ctl', 'history', 'acme', '--limit', 'lots'],
      ['certs', 'init'],
      ['doctor', '--timeout-ms', '1'],
      ['dev-server', '--bogus'],
      ['dev-server', '--port', 'x'],
    ]) {
      const r = await launcher(args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr.length, args.join(' ')).toBeGreaterThan(0);
    }
  });

  // issue 21: errors stayed plain text under --json.
  it('under --json errors are one JSON object on stderr', async () => {
    const usage = await launcher(['ctl', '--json', '--bogus']);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr)).toEqual({ error: { code: 'E_USAGE', message: expect.stringContaining("unknown option '--bogus'") } });
    // A failed call: no client config anywhere.
    const failed = await launcher(['ctl', '--json', 'list'], { LAUNCHER_CTL_CONFIG: '', LAUNCHER_ROOT: join(tmp.dir, 'none') });
    expect(failed.code).toBe(2);
    const body = JSON.parse(failed.stderr) as { error: { code: string; message: string } };
    expect(body.error.code).toMatch(/^E_[A-Z_]+$/);
    expect(body.error.message).toMatch(/missing --target/);
    // JSON output: snake_case keys (certs init used to print caCert, serverKey, rolesFile).
    const certs = await launcher(['certs', 'init', '--dir', join(tmp.dir, 'pki'), '--json']);
    expect(certs.code, certs.stderr).toBe(0);
    const keys = Object.keys(JSON.parse(certs.stdout) as object);
    expect(keys).toEqual(expect.arrayContaining(['ca_cert', 'server_cert', 'server_key', 'roles_file', 'identities']));
    for (const k of keys) expect(k).toMatch(/^[a-z0-9_]+$/);
    // dev-server too (it printed plain text for --json).
    const dev = await launcher(['dev-server', '--json', '--bogus']);
    expect(dev.code).toBe(2);
    expect(JSON.parse(dev.stderr)).toEqual({ error: { code: 'E_USAGE', message: expect.stringContaining("'--bogus'") } });
    const again = await launcher(['certs', 'init', '--dir', join(tmp.dir, 'pki'), '--json']);
    expect(again.code).toBe(1);
    expect((JSON.parse(again.stderr) as { error: { code: string } }).error.code).toMatch(/^E_[A-Z_]+$/);
  });

  // issue 21: `log_level (line 15)` blamed a good YAML line for a bad LAUNCHER_LOG_LEVEL; and pino's stack trace.
  it('a bad environment override names the variable, and LAUNCHER_LOG_LEVEL=bogus is a clear error', async () => {
    const cfg = join(tmp.dir, 'env.yaml');
    writeFileSync(cfg, `root_directory: ${tmp.dir}/root\nlog_level: info\ndevice_server: {url: "http://127.0.0.1:9"}\n`);
    const run = await launcher(['run', '--config', cfg, '--check'], { LAUNCHER_LOG_LEVEL: 'bogus' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/LAUNCHER_LOG_LEVEL=bogus \(environment\): /);
    expect(run.stderr).not.toMatch(/log_level \(line/);
    for (const args of [['demo', '--root', join(tmp.dir, 'd')], ['dev-server']]) {
      const r = await launcher(args, { LAUNCHER_LOG_LEVEL: 'bogus' });
      expect(r.code, args[0]).toBe(2);
      expect(r.stderr, args[0]).toMatch(/LAUNCHER_LOG_LEVEL="bogus" \(environment\): not a log level; use one of fatal, error, warn, info/);
      expect(r.stderr, args[0]).not.toMatch(/\n\s+at /);
    }
  });

  // issue 21: no `launcher version`, no build information in --version.
  it('`launcher version` and `--version` give version, commit, build date, Node and the osqueryd found', async () => {
    const bin = join(tmp.dir, 'vbin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'osqueryd'), '#!/bin/sh\necho "osqueryd version 5.99.0"\n');
    chmodSync(join(bin, 'osqueryd'), 0o755);
    const env = { PATH: `${bin}:${process.env.PATH ?? ''}`, LAUNCHER_OSQUERYD_PATH: '' };
    const json = await launcher(['version', '--json'], env);
    expect(json.code).toBe(0);
    const v = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(v).toMatchObject({
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      node_version: process.version,
      osqueryd_path: join(bin, 'osqueryd'),
      osqueryd_version: '5.99.0',
    });
    // Built from this git checkout by `npm run build` / `npm test`; "unknown" only outside one.
    expect(v.commit).toMatch(/^([0-9a-f]{12}(-dirty)?|unknown)$/);
    expect(v.build_date).toMatch(/^(\d{4}-\d\d-\d\dT.*Z|unknown)$/);
    for (const args of [['--version'], ['-V'], ['version']]) {
      const r = await launcher(args, env);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^osquery-launcher \d+\.\d+\.\d+\n/);
      expect(r.stdout).toMatch(/commit +\S+/);
      expect(r.stdout).toContain(`node         ${process.version}`);
      expect(r.stdout).toContain(`osqueryd     ${join(bin, 'osqueryd')} (5.99.0)`);
    }
  });

  // issue 21: the search list had duplicates and a macOS path and never mentioned the stand-in.
  it('the osqueryd search list is deduplicated, Linux-only on Linux, and says how the stand-in is chosen', async () => {
    const path = '/nonexistent/a:/usr/bin:/nonexistent/a:/usr/bin/';
    const cfg = join(tmp.dir, 'noosq.yaml');
    writeFileSync(cfg, `root_directory: ${tmp.dir}/root2\ndevice_server: {url: "http://127.0.0.1:9"}\n`);
    const run = await launcher(['run', '--config', cfg, '--check'], { PATH: path, LAUNCHER_OSQUERYD_PATH: '' });
    expect(run.code).toBe(2);
    const searched = /searched:\n((?: {2}\S+\n)+)/.exec(run.stderr)?.[1]?.trim().split(/\s+/) ?? [];
    expect(searched).toEqual(['/nonexistent/a/osqueryd', '/usr/bin/osqueryd', '/opt/osquery/bin/osqueryd', '/usr/local/bin/osqueryd']);
    expect(run.stderr).not.toMatch(/osquery\.app|\/var\/osquery/);
    expect(run.stderr).toMatch(/stand-in bin\/osqueryd-sim is used only by the demo/);
    const help = await launcher(['run', '--help'], { PATH: path });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(
      '  /nonexistent/a/osqueryd\n  /usr/bin/osqueryd\n  /opt/osquery/bin/osqueryd\n  /usr/local/bin/osqueryd\n',
    );
    expect(help.stdout).toMatch(/stand-in bin\/osqueryd-sim is used only by the demo/);
  });

  // issue 21: NO_COLOR was ignored (pino-pretty coloured a terminal's logs regardless). `script` gives the
  // supervisor a real pseudo-terminal, so its logs are pretty; read until the first log line, then stop it.
  it.skipIf(!existsSync('/usr/bin/script'))('NO_COLOR turns colour off in the pretty terminal logs', async () => {
    const cfg = join(tmp.dir, 'color.yaml');
    writeFileSync(
      cfg,
      `root_directory: ${tmp.dir}/rc\ndevice_server: {url: "http://127.0.0.1:9", insecure_transport: true}\nosqueryd_path: ${repo}/bin/osqueryd-sim\ncontrol: {enabled: false}\n`,
    );
    const firstLines = async (env: NodeJS.ProcessEnv): Promise<string> => {
      const child = spawn('/usr/bin/script', ['-qc', `${process.execPath} ${join(repo, 'bin/launcher')} run -c ${cfg}`, '/dev/null'], {
        cwd: tmp.dir,
        env: { ...process.env, LAUNCHER_LOG_FORMAT: '', ...env },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise((r) => child.once('exit', r));
      try {
        await waitFor(() => /starting launcher/.test(out), 20_000, 'the first log line');
      } finally {
        process.kill(-child.pid!, 'SIGTERM');
        await exited;
      }
      return out;
    };
    expect(await firstLines({ FORCE_COLOR: '', NO_COLOR: '' })).toMatch(/\x1b\[/);
    expect(await firstLines({ NO_COLOR: '1' })).not.toMatch(/\x1b\[/);
  });
});
