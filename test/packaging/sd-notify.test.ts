// sd_notify through systemd-notify, received on a real Unix datagram socket (bound by a
// small Python receiver: Node has no Unix datagram sockets, which is why sdNotify shells out).
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sdNotify, sdReady, sdStopping } from '../../src/cli/sd-notify.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';
import { which } from './support.js';

const SYSTEMD_NOTIFY = which('systemd-notify');
const PYTHON = which('python3');
if (!SYSTEMD_NOTIFY || !PYTHON)
  process.stderr.write(
    `test/packaging: ${!SYSTEMD_NOTIFY ? 'systemd-notify (apt-get install systemd)' : 'python3'} missing: sd_notify delivery is not tested\n`,
  );

const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    data = s.recv(65536)
    print(repr(data.decode()), flush=True)
`;

const children: ResultPromise[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const c of children.splice(0)) await c.catch(() => undefined);
  while (cleanups.length) cleanups.pop()!();
});

describe('sdNotify', () => {
  it('does nothing outside systemd (no NOTIFY_SOCKET) or without systemd-notify', async () => {
    expect(await sdReady('up', { env: {} })).toBe(false);
    expect(await sdReady('up', { env: { NOTIFY_SOCKET: '/nonexistent/notify' }, binary: '/nonexistent/systemd-notify' })).toBe(false);
    expect(await sdNotify({}, { env: { NOTIFY_SOCKET: '/x' } })).toBe(false);
  });

  it('refuses values that would inject another field', async () => {
    expect(await sdNotify({ STATUS: 'ok\nREADY=1' }, { env: { NOTIFY_SOCKET: '/x' }, binary: '/bin/true' })).toBe(false);
    expect(await sdNotify({ 'bad key': '1' }, { env: { NOTIFY_SOCKET: '/x' }, binary: '/bin/true' })).toBe(false);
  });

  it.skipIf(!SYSTEMD_NOTIFY || !PYTHON)('delivers READY=1 with STATUS, then STOPPING=1, to $NOTIFY_SOCKET', async () => {
    const t = shortTempDir('sdn');
    cleanups.push(t.cleanup);
    const socket = join(t.dir, 'notify');
    const receiver = execa(PYTHON!, ['-c', RECEIVER, socket], { reject: false, stdin: 'ignore' });
    children.push(receiver);
    let out = '';
    receiver.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('bound') && existsSync(socket), 10_000, 'receiver bound');
    const env = { NOTIFY_SOCKET: socket, PATH: process.env.PATH ?? '' };

    expect(await sdReady('2 instances up', { env })).toBe(true);
    await waitFor(() => out.includes(`'READY=1\\nSTATUS=2 instances up'`), 10_000, 'READY datagram');
    expect(await sdStopping(undefined, { env })).toBe(true);
    await waitFor(() => out.includes(`'STOPPING=1'`), 10_000, 'STOPPING datagram');
  });
});
