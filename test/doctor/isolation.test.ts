// Issue 22: `launcher doctor` warns when tenants' osqueryd cannot get their own view of the filesystem.
import { describe, expect, it } from 'vitest';
import { checkIsolation } from '../../src/doctor/isolation.js';
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
});
