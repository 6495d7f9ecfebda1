// Issue 17: the TUF client side against a real repository (signed with keys made here) over HTTP on 127.0.0.1:
// what is accepted, what is refused, and that a refusal installs nothing.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLauncherError } from '../../src/errors.js';
import { binaryPath, installArchive, installedVersions, makeStagingDir, stagingDir } from '../../src/update/install.js';
import { UpdateRepository } from '../../src/update/repository.js';
import { shortTempDir } from '../helpers/tmp.js';
import { simArchive, TufTestRepo } from '../helpers/tuf-repo.js';

const repoRoot = resolve(import.meta.dirname, '../..');
let tmp: ReturnType<typeof shortTempDir>;
let tuf: TufTestRepo;

function client(o: { fetchTimeoutMs?: number; maxTargetBytes?: number; metadataUrl?: string } = {}): UpdateRepository {
  return new UpdateRepository({
    metadataUrl: o.metadataUrl ?? tuf.metadataUrl,
    targetsUrl: tuf.targetsUrl,
    trustedRootPath: tuf.writeTrustedRoot(join(tmp.dir, 'root.json')),
    metadataDir: join(tmp.dir, 'root', 'update', 'tuf'),
    fetchTimeoutMs: o.fetchTimeoutMs ?? 10_000,
    maxTargetBytes: o.maxTargetBytes ?? 64 * 1024 * 1024,
    platform: 'linux',
  });
}

async function refused(p: Promise<unknown>, code: 'E_UPDATE' | 'E_UNAVAILABLE', pattern: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isLauncherError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  expect((err as Error).message).toMatch(pattern);
}

beforeEach(async () => {
  tmp = shortTempDir('tuf');
  tuf = await TufTestRepo.start();
  tuf.addTarget('osqueryd/linux/osqueryd-5.13.0-sim.tar.gz', await simArchive(tmp.dir, repoRoot, '5.13.0-sim'));
  tuf.setChannel('linux', 'stable', '5.13.0-sim');
  tuf.publish();
});

afterEach(async () => {
  await tuf.close();
  tmp.cleanup();
});

describe('update repository (tuf-js against a real repository)', () => {
  it('reads the channel, downloads the verified archive and installs a runnable version', async () => {
    const c = client();
    const { latest } = await c.refresh('stable');
    expect(latest?.version).toBe('5.13.0-sim');
    const root = join(tmp.dir, 'root');
    const dir = makeStagingDir(root, 'dl');
    await c.download(latest!.target, join(dir, 'a.tar.gz'));
    const bin = await installArchive(root, '5.13.0-sim', join(dir, 'a.tar.gz'), 64 * 1024 * 1024);
    expect(bin).toBe(binaryPath(root, '5.13.0-sim'));
    expect(execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim()).toBe('osqueryd version 5.13.0-sim');
    expect(installedVersions(root)).toEqual(['5.13.0-sim']);
    // Other channels have no pointer: nothing to do.
    expect((await c.refresh('beta')).latest).toBeUndefined();
  });

  it('refuses timestamp metadata signed by a key the root does not trust', async () => {
    tuf.publish({ badTimestampSignature: true });
    await refused(client().refresh('stable'), 'E_UPDATE', /timestamp|signature|Unsigned/i);
  });

  it('refuses targets metadata signed by an untrusted key', async () => {
    tuf.publish({ badTargetsSignature: true });
    await refused(client().refresh('stable'), 'E_UPDATE', /targets|Unsigned/i);
  });

  it('refuses an expired timestamp', async () => {
    tuf.publish({ timestampExpires: '2020-01-01T00:00:00Z' });
    await refused(client().refresh('stable'), 'E_UPDATE', /expired/i);
  });

  it('refuses a replay of older metadata after newer was seen', async () => {
    const old = tuf.snapshotFiles();
    tuf.publish();
    const c = client();
    await c.refresh('stable');
    tuf.restoreFiles(old);
    await refused(c.refresh('stable'), 'E_UPDATE', /version|BadVersion/i);
  });

  it('refuses an archive whose bytes do not match the signed hash, and installs nothing', async () => {
    const name = '/targets/osqueryd/linux/osqueryd-5.13.0-sim.tar.gz';
    const good = (await fetch(`${tuf.url}${name}`).then((r) => r.arrayBuffer())) as ArrayBuffer;
    const evil = Buffer.from(good);
    evil[evil.length - 10] = evil[evil.length - 10]! ^ 0xff; // same length, other bytes
    tuf.tamper.set(name, evil);
    const c = client();
    const { latest } = await c.refresh('stable');
    const dir = makeStagingDir(join(tmp.dir, 'root'), 'dl');
    await refused(c.download(latest!.target, join(dir, 'a.tar.gz')), 'E_UPDATE', /hash|mismatch/i);
    expect(existsSync(join(dir, 'a.tar.gz'))).toBe(false);
    // Longer than signed: refused too.
    tuf.tamper.set(name, Buffer.concat([Buffer.from(good), Buffer.alloc(1024)]));
    await refused(c.download(latest!.target, join(dir, 'b.tar.gz')), 'E_UPDATE', /length/i);
    expect(installedVersions(join(tmp.dir, 'root'))).toEqual([]);
  });

  it('refuses a target larger than max_target_mb before fetching a byte of it', async () => {
    tuf.addTarget('osqueryd/linux/osqueryd-5.14.0-sim.tar.gz', Buffer.alloc(3 * 1024 * 1024));
    tuf.setChannel('linux', 'stable', '5.14.0-sim');
    tuf.publish();
    tuf.requests = [];
    await refused(client({ maxTargetBytes: 1024 * 1024 }).refresh('stable'), 'E_UPDATE', /over update.max_target_mb/);
    expect(tuf.requests.some((p) => p.startsWith('/targets/'))).toBe(false);
  });

  it('gives up on a server that stops sending mid-download, within the timeout, leaving nothing', async () => {
    tuf.hangOn.add('/targets/osqueryd/linux/osqueryd-5.13.0-sim.tar.gz');
    const c = client({ fetchTimeoutMs: 1500 });
    const { latest } = await c.refresh('stable');
    const dir = makeStagingDir(join(tmp.dir, 'root'), 'dl');
    await refused(c.download(latest!.target, join(dir, 'a.tar.gz')), 'E_UNAVAILABLE', /download|abort|timeout/i);
    expect(existsSync(join(dir, 'a.tar.gz'))).toBe(false);
    expect(readdirSync(dir)).toEqual([]); // no partial file left behind
    expect(readdirSync(stagingDir(join(tmp.dir, 'root'))).length).toBe(1); // only the test's own download directory
  });

  it('refuses a channel pointer that names a path outside the archive layout', async () => {
    for (const target of [
      'osqueryd/linux/../../../etc/passwd',
      'osqueryd/darwin/osqueryd-5.13.0-sim.tar.gz',
      'osqueryd/linux/osqueryd-5.13.0/../x.tar.gz',
      'osqueryd/linux/osqueryd-../../x.tar.gz',
    ]) {
      tuf.addTarget('osqueryd/linux/stable/release.json', Buffer.from('{}'), { target });
      tuf.publish();
      await refused(client().refresh('stable'), 'E_UPDATE', /not osqueryd\/linux\/osqueryd-<version>\.tar\.gz/);
    }
  });

  it('an unreachable repository is E_UNAVAILABLE, not a refusal', async () => {
    await refused(client({ metadataUrl: 'http://127.0.0.1:1/metadata' }).refresh('stable'), 'E_UNAVAILABLE', /metadata/);
  });
});
