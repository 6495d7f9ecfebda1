// issue 18: a metrics address that cannot be bound is a configuration error
// of `launcher run` (exit 2, the address and the reason on stderr), as for
// the control API; nothing keeps running. Real process, real busy port.
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { processesUnder } from '../../bench/reliability/procfs.js';
import { shortTempDir } from '../helpers/tmp.js';

const repo = resolve(import.meta.dirname, '../..');
let busy: Server | undefined;
let tmp: ReturnType<typeof shortTempDir> | undefined;
afterEach(async () => {
  await new Promise((r) => (busy ? busy.close(r) : r(undefined)));
  tmp?.cleanup();
});

describe('metrics listen failure', () => {
  it('a port already in use stops `launcher run` with exit 2 and says why', async () => {
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
        metrics: { listen: `127.0.0.1:${port}` },
      }),
    );
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('LAUNCHER_')) delete env[k];
    const r = spawnSync(process.execPath, [join(repo, 'bin/launcher'), 'run', '--config', join(tmp.dir, 'l.yaml')], {
      encoding: 'utf8',
      timeout: 60_000,
      env,
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`metrics endpoint cannot listen on 127.0.0.1:${port}`);
    expect(r.stderr).toContain('EADDRINUSE');
    expect(processesUnder(root)).toEqual([]);
  });
});
