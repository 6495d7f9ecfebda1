// issue 18: what a SIGHUP reload would change, planned from the file in force and the new file (pure; the
// real-process test is test/app/signals.test.ts).
import { describe, expect, it } from 'vitest';
import { planReload } from '../../src/app/config-reload.js';
import { parseConfig } from '../../src/config/load.js';

const base = {
  root_directory: '/tmp/r',
  device_server: { url: 'https://device.example' },
  control: { enabled: false },
};
const cfg = (registrations: unknown[], extra: Record<string, unknown> = {}) =>
  parseConfig(JSON.stringify({ ...base, registrations, ...extra }), 'test.yaml', {});
const r = (id: string, more: Record<string, unknown> = {}) => ({ id, enroll_secret: `s-${id}`, ...more });

describe('planReload', () => {
  it('adds, removes and changes only what differs; adopts runtime ids the file now names', () => {
    const now = cfg([r('kolide'), r('acme'), r('globex')]);
    const next = cfg([r('kolide'), r('acme', { limits: { memory_mb: 300 } }), r('initech'), r('umbrella')]);
    const plan = planReload(now, next, new Set(['kolide', 'acme', 'globex', 'umbrella']), 'kolide', 'test.yaml');
    expect(plan.add.map((x) => x.id)).toEqual(['initech']);
    expect(plan.remove).toEqual(['globex']);
    expect(plan.change.map((x) => x.id)).toEqual(['acme', 'umbrella']);
    expect(plan.adopted).toEqual(['umbrella']);
    expect(plan.restartNeeded).toEqual([]);
    expect(plan.logLevelChanged).toBe(false);
  });

  it('flags, secrets and isolation count as changes; other top-level keys need a restart', () => {
    const now = cfg([r('kolide'), r('acme'), r('globex')]);
    const next = cfg(
      [r('kolide', { osquery_flags: ['--verbose'] }), r('acme', { enroll_secret: 'new' }), r('globex', { isolation: { mode: 'none' } })],
      {
        log_level: 'debug',
        health: { interval_seconds: 5 },
        root_directory: '/tmp/other',
      },
    );
    const plan = planReload(now, next, new Set(['kolide', 'acme', 'globex']), 'kolide', 'test.yaml');
    expect(plan.change.map((x) => x.id)).toEqual(['kolide', 'acme', 'globex']);
    expect(plan.restartNeeded.sort()).toEqual(['health', 'root_directory']);
    expect(plan.logLevelChanged).toBe(true);
  });

  it('refuses to rename or drop the vendor', () => {
    const now = cfg([r('kolide'), r('acme')]);
    expect(() => planReload(now, cfg([r('acme'), r('kolide')]), new Set(['kolide', 'acme']), 'kolide', 'f.yaml')).toThrow(
      /vendor registration is "kolide" and a reload cannot rename it to "acme"/,
    );
    expect(() => planReload(now, cfg([]), new Set(['kolide', 'acme']), 'kolide', 'f.yaml')).toThrow(/cannot remove it/);
    expect(() => planReload(now, cfg([r('globex')]), new Set(), 'kolide', 'f.yaml')).toThrow(/E_CONFIG|vendor/);
  });

  // Review: a pin changed in the file was ignored silently (the update service reads pins at start).
  it('a changed osqueryd_version pin is reported as needing a restart', () => {
    const now = cfg([r('kolide'), r('acme')]);
    const plan = planReload(
      now,
      cfg([r('kolide'), r('acme', { osqueryd_version: '5.12.1' })]),
      new Set(['kolide', 'acme']),
      'kolide',
      'f.yaml',
    );
    expect(plan.restartNeeded).toEqual(['registrations.acme.osqueryd_version']);
  });

  it('an unchanged file plans nothing', () => {
    const now = cfg([r('kolide'), r('acme')]);
    const plan = planReload(now, cfg([r('kolide'), r('acme')]), new Set(['kolide', 'acme', 'runtime1']), 'kolide', 'f.yaml');
    expect(plan).toEqual({ add: [], remove: [], change: [], adopted: [], restartNeeded: [], logLevelChanged: false });
  });
});
