// Issue 17: versions become directory names and decide what is an upgrade and what is a rollback attempt.
import { describe, expect, it } from 'vitest';
import { isLauncherError } from '../../src/errors.js';
import { versionOfArchive } from '../../src/update/layout.js';
import { compareVersions, parseVersion, versionProblem } from '../../src/update/version.js';

describe('versions', () => {
  it('orders numbers part by part, a pre-release before its release', () => {
    const sorted = ['5.13.0', '5.9.1', '5.13.0-rc1', '5.12.1-sim', '5.13', '10.0.0', '5.13.0.1'].sort(compareVersions);
    expect(sorted).toEqual(['5.9.1', '5.12.1-sim', '5.13.0-rc1', '5.13.0', '5.13', '5.13.0.1', '10.0.0']);
    expect(compareVersions('5.13', '5.13.0')).toBe(0);
  });

  it('admits only names that are safe as a directory', () => {
    for (const ok of ['5.13.1', '5.13.1-rc1', '5.12.1-sim', '1.2']) expect(versionProblem(ok)).toBeUndefined();
    for (const bad of ['', '..', '5', '5.13.1/..', '../5.13.1', '5.13.1-..', '5.13.1-a/b', '5.13.1 ', '-5.1', '5.1-']) {
      expect(versionProblem(bad), bad).toBeDefined();
      expect(() => parseVersion(bad)).toThrow(/version/);
    }
    const err = (() => {
      try {
        parseVersion(42, 'pin');
      } catch (e) {
        return e;
      }
    })();
    expect(isLauncherError(err, 'E_INVALID_ARGUMENT')).toBe(true);
  });

  it('reads the version from an archive target of this platform only', () => {
    expect(versionOfArchive('osqueryd/linux/osqueryd-5.13.1.tar.gz', 'linux')).toBe('5.13.1');
    for (const bad of [
      'osqueryd/darwin/osqueryd-5.13.1.tar.gz',
      'osqueryd/linux/sub/osqueryd-5.13.1.tar.gz',
      '/osqueryd/linux/osqueryd-5.13.1.tar.gz',
      'osqueryd/linux/osqueryd-5.13.1.tar.gz/../../x',
      42,
    ])
      expect(() => versionOfArchive(bad, 'linux')).toThrow(/osqueryd-<version>\.tar\.gz|archive/);
  });
});
