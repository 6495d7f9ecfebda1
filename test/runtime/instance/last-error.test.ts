// issue 13: an osqueryd that exits during launch because of a bad flag left only
// "exited with code 1 during launch" in last_error; osqueryd's own error line
// (gflags' `ERROR: ...` on stderr) must be there.
import { afterEach, describe, expect, it } from 'vitest';
import { lastWords } from '../../../src/runtime/instance/last-words.js';
import { AppHarness } from '../../faults/support/app-harness.js';
import { simAvailable, waitFor } from '../helpers.js';
import { parseRegistrationId as rid } from '../../../src/registration.js';

let app: AppHarness | undefined;
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && app) process.stderr.write(app.logTail(150));
  const report = await app?.stop();
  app = undefined;
  expect(report?.leaked ?? []).toEqual([]);
});

describe('lastWords', () => {
  const err = (text: string) => ({ stream: 'stderr', text });
  it('prefers a glog ERROR/FATAL message, else the last plain stderr line of an exit with a code', () => {
    const info = err('I1201 23:08:49.289000 13758 init.cpp:300] osqueryd started');
    expect(lastWords([info, err("ERROR: unknown command line flag 'bogus'")])).toBe("ERROR: unknown command line flag 'bogus'");
    expect(lastWords([err('E1201 23:08:49.289000 13758 init.cpp:393] initialize failed: x'), err('plain tail')])).toBe(
      'initialize failed: x',
    );
    expect(lastWords([info, { stream: 'stdout', text: 'a result line' }])).toBeUndefined();
    // Killed by a signal: only glog errors count, not whatever plain line came last.
    expect(lastWords([err('(node) a warning')], false)).toBeUndefined();
  });
});

describe.runIf(simAvailable())('last_error of a launch that osqueryd refused', () => {
  it('a flag with an illegal value given through the config: status and history carry osqueryd’s own error line', async () => {
    app = await AppHarness.start({
      registrations: ['kolide', 'acme'],
      runner: { backoff: { initialMs: 60_000, maxMs: 60_000 } },
      config: {
        registrations: [
          { id: 'kolide', enroll_secret: 'secret-kolide' },
          { id: 'acme', enroll_secret: 'secret-acme', osquery_flags: ['--logger_min_status=loud'] },
        ],
      },
    });
    const st = await waitFor(
      'acme in backoff after the refused launch',
      () => {
        const s = app!.status('acme');
        return s.state === 'backoff' ? s : undefined;
      },
      20_000,
    );
    expect(st.last_error).toMatch(
      /exited with code 1 during launch: ERROR: illegal value 'loud' specified for int32 flag 'logger_min_status'/,
    );
    const run = app.app.runner.history(rid('acme'), 1)[0]!;
    expect(run.error).toBe(st.last_error);
    expect(app.status('kolide').healthy || (await app.waitHealthy('kolide'))).toBeTruthy();
  });
});
