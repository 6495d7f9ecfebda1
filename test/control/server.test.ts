import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaultListen, parseListen } from '../../src/control/listen.js';
import { waitFor } from '../helpers/tmp.js';
import { FakeTarget, clientFor, makePki, startServer, type Pki } from './fixtures.js';

describe('control server lifecycle', () => {
  let pki: Pki;
  const target = new FakeTarget();
  const children: ChildProcess[] = [];
  const netServers: Server[] = [];

  beforeAll(async () => {
    pki = await makePki();
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
    }
    for (const s of netServers.splice(0)) await new Promise((r) => s.close(r));
  });

  afterAll(() => pki?.cleanup());

  it('parses listen addresses and refuses bad ones', () => {
    expect(parseListen('unix:///run/l/control.sock')).toEqual({ kind: 'unix', path: '/run/l/control.sock' });
    expect(parseListen('127.0.0.1:7443')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 7443 });
    expect(parseListen('[::1]:0')).toEqual({ kind: 'tcp', host: '::1', port: 0 });
    expect(defaultListen('/var/lib/launcher')).toBe('unix:///var/lib/launcher/control.sock');
    expect(() => parseListen('unix://relative.sock')).toThrow(/must be absolute/);
    expect(() => parseListen('localhost')).toThrow(/expected unix:\/\/\/path or host:port/);
    expect(() => parseListen(`unix:///${'x'.repeat(120)}`)).toThrow(/over the 107-byte limit/);
  });

  it('closes cleanly, removes its socket, and close() is idempotent', async () => {
    const server = await startServer(pki, target, { listen: `unix://${join(pki.dir, 'a.sock')}`, socketMode: 0o660 });
    expect(statSync(server.socketPath as string).mode & 0o777).toBe(0o660);
    const client = clientFor(pki, server, 'admin');
    expect(await client.listInstances()).toHaveLength(2);
    client.close();
    await server.close();
    await server.close();
    expect(existsSync(server.socketPath as string)).toBe(false);
  });

  it('replaces a stale socket left by a crashed process', async () => {
    const path = join(pki.dir, 'stale.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)})`], { stdio: 'ignore' });
    children.push(child);
    await waitFor(() => existsSync(path), 10_000, 'the child to listen');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(statSync(path).isSocket()).toBe(true); // left behind
    const server = await startServer(pki, target, { listen: `unix://${path}` });
    const client = clientFor(pki, server, 'admin');
    expect(await client.listInstances()).toHaveLength(2);
    client.close();
    await server.close();
  });

  it('refuses a socket another process is serving, and a path that is not a socket', async () => {
    const live = join(pki.dir, 'live.sock');
    const other = createServer();
    netServers.push(other);
    await new Promise<void>((r) => other.listen(live, () => r()));
    await expect(startServer(pki, target, { listen: `unix://${live}` })).rejects.toMatchObject({
      code: 'E_CONFIG',
      message: expect.stringMatching(/already serving/),
    });
    const file = join(pki.dir, 'plain.txt');
    writeFileSync(file, 'not a socket');
    await expect(startServer(pki, target, { listen: `unix://${file}` })).rejects.toThrow(/is not a socket/);
  });

  it('refuses invalid roles and unusable TLS material', async () => {
    await expect(startServer(pki, target, { roles: { 'CN=a,O=b': 'admin' } })).rejects.toMatchObject({ code: 'E_CONFIG' });
    await expect(startServer(pki, target, { roles: { admin: 'admin', 'CN=admin': 'tenant:acme' } })).rejects.toThrow(/two roles/);
    await expect(startServer(pki, target, { roles: { 'CN=x': 'tenant:Bad Id' } })).rejects.toThrow(/invalid control API role/);
    await expect(startServer(pki, target, { key: join(pki.dir, 'missing.key') })).rejects.toMatchObject({ code: 'E_TLS' });
    await expect(startServer(pki, target, { key: join(pki.dir, 'admin.key') })).rejects.toMatchObject({ code: 'E_TLS' }); // key does not match the cert
  });
});
