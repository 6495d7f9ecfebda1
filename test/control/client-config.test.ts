// Which ctl.json `launcher ctl` picks when none is named (issue 21 review: a stale ./.launcher-demo/ctl.json beat an
// explicit $LAUNCHER_ROOT, the opposite of the order the demo uses to pick its root). Real files in a temp dir.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findClientConfig } from '../../src/control/client-config.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function workspace(): string {
  dir = mkdtempSync(join(tmpdir(), 'ctlcfg-'));
  mkdirSync(join(dir, '.launcher-demo'));
  writeFileSync(join(dir, '.launcher-demo', 'ctl.json'), '{}');
  return dir;
}

describe('findClientConfig', () => {
  it('LAUNCHER_CTL_CONFIG beats everything', () => {
    const cwd = workspace();
    expect(findClientConfig({ LAUNCHER_CTL_CONFIG: '/x/ctl.json', LAUNCHER_ROOT: '/r' }, cwd)).toBe('/x/ctl.json');
  });

  it('LAUNCHER_ROOT beats a ./.launcher-demo left from an earlier demo, and a relative one is taken from cwd', () => {
    const cwd = workspace();
    expect(findClientConfig({ LAUNCHER_ROOT: '/var/lib/osquery-launcher' }, cwd)).toBe('/var/lib/osquery-launcher/ctl.json');
    expect(findClientConfig({ LAUNCHER_ROOT: 'other' }, cwd)).toBe(join(cwd, 'other', 'ctl.json'));
  });

  it('falls back to ./.launcher-demo/ctl.json, then to nothing', () => {
    const cwd = workspace();
    expect(findClientConfig({}, cwd)).toBe(join(cwd, '.launcher-demo', 'ctl.json'));
    rmSync(join(cwd, '.launcher-demo'), { recursive: true });
    expect(findClientConfig({}, cwd)).toBeUndefined();
  });
});
