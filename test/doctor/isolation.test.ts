// Issue 22: `launcher doctor` warns when tenants' osqueryd cannot get their own view of the filesystem.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkIsolation, groupsInIsolationRange } from '../../src/doctor/isolation.js';
import { config, context } from './support.js';

const base = { device_server: { url: 'https://device.example.test' } };

describe('doctor: isolation', () => {
  it('warns with the reason when the launcher is not root', async () => {
    const r = await checkIsolation(context(config(base)), 1000);
    expect(r.status).toBe('warn');
    expect(r.detail).toMatch(/filesystem isolation unavailable: mount namespaces need root; the supervisor runs as uid 1000/);
  });

  it('warns when the configuration turns namespaces off', async () => {
    const r = await checkIsolation(context(config({ ...base, isolation_namespaces: 'off' })), 0);
    expect(r).toMatchObject({ status: 'warn' });
    expect(r.detail).toMatch(/isolation_namespaces is off/);
  });

  it.runIf(process.geteuid?.() === 0)('passes as root where unshare --mount works', async () => {
    expect((await checkIsolation(context(config(base)))).status).toBe('pass');
  });

  it('warns about host groups in the range tenants take their real gid from (ADR 0016)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'doc-grp-'));
    try {
      const file = join(dir, 'group');
      writeFileSync(file, 'root:x:0:\nnogroup:x:65534:\nclash:x:1879048193:alice\nbad line\nlast:x:2147352576:\n');
      expect(groupsInIsolationRange(file)).toEqual(['clash (1879048193)']);
      expect(groupsInIsolationRange(join(dir, 'missing'))).toEqual([]);
      if (process.geteuid?.() !== 0) return;
      const r = await checkIsolation(context(config(base)), undefined, file);
      expect(r.status).toBe('warn');
      expect(r.detail).toMatch(/groups clash \(1879048193\) lie in the range/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
