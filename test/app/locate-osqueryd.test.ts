// Issue 8: a missing osqueryd in a non-demo config is a clear error listing the paths searched.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { locateOsqueryd, USUAL_OSQUERYD_PATHS } from '../../src/app/locate-osqueryd.js';
import { shortTempDir } from '../helpers/tmp.js';

const repo = resolve(import.meta.dirname, '../..');

describe('locating osqueryd', () => {
  it('finds one on PATH, else lists every path searched', () => {
    const tmp = shortTempDir('loc');
    try {
      const bin = join(tmp.dir, 'bin');
      mkdirSync(bin);
      expect(() => locateOsqueryd('auto', { env: { PATH: bin } })).toThrow(
        new RegExp(`searched:[\\s\\S]*${bin}/osqueryd[\\s\\S]*${USUAL_OSQUERYD_PATHS.linux![0]}`),
      );
      writeFileSync(join(bin, 'osqueryd'), '#!/bin/sh\n');
      chmodSync(join(bin, 'osqueryd'), 0o755);
      expect(locateOsqueryd('auto', { env: { PATH: bin } })).toMatchObject({ path: join(bin, 'osqueryd'), source: 'path' });
      expect(locateOsqueryd('auto', { env: { PATH: '' }, allowStandIn: true }).source).toBe('stand-in');
      expect(() => locateOsqueryd(join(bin, 'nope'))).toThrow(/is not an executable file/);
    } finally {
      tmp.cleanup();
    }
  });

  it('`launcher run` exits non-zero before starting anything on a bad config or a missing osqueryd', async () => {
    const tmp = shortTempDir('run');
    try {
      const cfg = join(tmp.dir, 'l.yaml');
      writeFileSync(cfg, `root_directory: ${tmp.dir}/root\ndevice_server: {url: "http://127.0.0.1:9"}\nregistrations: [{id: "Bad/Id"}]\n`);
      const bad = await promisify(execFile)(process.execPath, [join(repo, 'bin/launcher'), 'run', '--config', cfg]).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
      expect(bad?.code).toBe(2);
      expect(bad?.stderr).toMatch(/registrations\.0\.id \(line 3\): must match/);
      writeFileSync(cfg, `root_directory: ${tmp.dir}/root\ndevice_server: {url: "http://127.0.0.1:9"}\n`);
      const missing = await promisify(execFile)(process.execPath, [join(repo, 'bin/launcher'), 'run', '--config', cfg, '--check'], {
        env: { ...process.env, PATH: '/nonexistent' },
      }).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
      expect(missing?.code).toBe(2);
      expect(missing?.stderr).toMatch(/osqueryd not found; searched:[\s\S]*\/nonexistent\/osqueryd/);
    } finally {
      tmp.cleanup();
    }
  });
});
