// issue 18 (review): a metrics address that cannot be bound, e.g. a port another local user took first, must not
// stop the supervisor: osqueryd keeps running, the failure is logged, the endpoint is retried and comes up once the
// address is free. Real `launcher run` process, real busy port, real stand-in.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processesUnder } from '../../bench/reliability/procfs.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';

const repo = resolve(import.meta.dirname, '../..');
let busy: Server | undefined;
let tmp: ReturnType<typeof shortTempDir> | undefined;
afterEach(async () => {
  await new Promise((r) => (busy?.listening ? busy.close(r) : r(undefined)));
  tmp?.cleanup();
});

describe('metrics listen failure', () => {
  it('a port already in use leaves the supervisor running; the endpoint comes up once the port is free', async () => {
    busy = createServer();
    await new Promise<void>((r) => busy!.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    tmp = shortTempDir('mlf');
    const root = join(tmp.dir, 'r');
    writeFileSync(
      join(tmp.dir, 'l.yaml'),
      JSON.stringify({
        root_directory: root,
        osqueryd_path: join(repo, 'bin/osqueryd-sim'),
        device_server: { url: 'http://127.0.0.1:1', insecure_transport: true },
        control: { enabled: false },
        registrations: [{ id: 'kolide', enroll_secret: 'x' }],
        metrics: { listen: `127.0.0.1:${port}` },
      }),
    );
    const env: NodeJS.ProcessEnv = { ...process.env, LAUNCHER_LOG_FORMAT: 'json' };
    for (const k of Object.keys(env)) if (k.startsWith('LAUNCHER_') && k !== 'LAUNCHER_LOG_FORMAT') delete env[k];
    const child = spawn(process.execPath, [join(repo, 'bin/launcher'), 'run', '--config', join(tmp.dir, 'l.yaml')], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await waitFor(() => out.includes('metrics endpoint unavailable') && out.includes('EADDRINUSE'), 60_000, 'the listen failure logged');
      await waitFor(() => out.includes('launcher ready'), 60_000, 'the supervisor running despite it');
      expect(child.exitCode).toBeNull();
      await new Promise((r) => busy!.close(r));
      await waitFor(() => out.includes('metrics endpoint listening'), 30_000, 'the endpoint up after the port was freed');
      const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(body).toMatch(/^launcher_registrations 1$/m);
    } finally {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
    expect(processesUnder(root)).toEqual([]);
  }, 120_000);
});
