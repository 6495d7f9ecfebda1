// issue 21: each run hands its extension a read-only view of itself (run id,
// osqueryd's instance id, uptime) instead of the extension asking the Runner.
// Before, osqueryInstanceId was never passed in and
// kolide_launcher_info.osquery_instance_id was always ''. Real app, real
// stand-in osqueryd, real device server.
import { afterEach, describe, expect, it } from 'vitest';
import { AppHarness } from '../faults/support/app-harness.js';
import { parseRegistrationId as rid } from '../../src/registration.js';
import { buildInfo } from '../../src/version.js';

let h: AppHarness | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && h) process.stderr.write(`${h.logTail(200)}\n`);
  const report = await h?.stop();
  h = undefined;
  expect(report?.leaked ?? [], 'osqueryd processes alive after the app stopped').toEqual([]);
});

describe('kolide_launcher_info', () => {
  it("osquery_instance_id is the asking osqueryd's own osquery_info.instance_id, per instance", async () => {
    h = await AppHarness.start({ registrations: ['kolide', 'acme'] });
    const ids: Record<string, string> = {};
    for (const reg of ['kolide', 'acme']) {
      const status = await h.waitHealthy(reg);
      const [own] = await h.app.runner.query(rid(reg), 'select instance_id from osquery_info', 10_000);
      const rows = await h.app.runner.query(rid(reg), 'select osquery_instance_id, enrollment_id from kolide_launcher_info', 10_000);
      expect(own!.instance_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(rows).toEqual([{ osquery_instance_id: own!.instance_id, enrollment_id: reg }]);
      expect(status.instance_id).toBe(own!.instance_id);
      ids[reg] = own!.instance_id!;
    }
    expect(ids.kolide).not.toBe(ids.acme);
    // revision and build_date come from the build's dist/build-info.json (they were always empty).
    const build = buildInfo();
    const [info] = await h.app.runner.query(rid('kolide'), 'select revision, build_date from kolide_launcher_info', 10_000);
    expect(info).toEqual({
      revision: build.commit === 'unknown' ? '' : build.commit,
      build_date: build.build_date === 'unknown' ? '' : build.build_date,
    });
    expect(build.commit).not.toBe('unknown');
  }, 90_000);
});
