import { describe, expect, it } from 'vitest';
import { buildOsquerydArgs, normaliseUserFlags } from '../../../src/runtime/instance/flags.js';
import { extensionFlagNames } from '../../../src/runtime/instance/extension.js';

const names = { extensionName: 'kolide_grpc', configPlugin: 'kolide_grpc', loggerPlugin: 'kolide_grpc', distributedPlugin: 'kolide_grpc' };
const base = { names, pidfilePath: '/r/s/x.pid', databasePath: '/r/registrations/a/osquery.db', socketPath: '/r/s/x.em' };

describe('buildOsquerydArgs', () => {
  it("uses launcher's order: defaults, watchdog, refresh, user flags, then the fixed tail (docs/protocol/device.md#command-line)", () => {
    const args = buildOsquerydArgs({
      ...base,
      watchdogFlags: ['--disable_watchdog', '--distributed_denylist_duration=0'],
      userFlags: ['verbose', '--logger_min_status=1'],
    });
    expect(args).toEqual([
      '--logger_plugin=kolide_grpc',
      '--distributed_plugin=kolide_grpc',
      '--disable_distributed=false',
      '--distributed_interval=5',
      '--pack_delimiter=:',
      '--host_identifier=uuid',
      '--force=true',
      '--utc',
      '--disable_watchdog',
      '--distributed_denylist_duration=0',
      '--config_refresh=300',
      '--config_accelerated_refresh=30',
      '--verbose',
      '--logger_min_status=1',
      '--pidfile=/r/s/x.pid',
      '--database_path=/r/registrations/a/osquery.db',
      '--extensions_socket=/r/s/x.em',
      '--disable_extensions=false',
      '--extensions_timeout=20',
      '--config_plugin=kolide_grpc',
      '--extensions_require=kolide_grpc',
    ]);
  });

  it('takes plugin names from the extension and timings from options', () => {
    const args = buildOsquerydArgs({
      ...base,
      names: { extensionName: 'tenant_ext', configPlugin: 'cfg' },
      watchdogFlags: ['--watchdog_memory_limit=300', '--watchdog_delay=120'],
      userFlags: [],
      timings: { extensionsInterval: 1, extensionsTimeout: 3, configRefresh: 10, distributedInterval: 1 },
    });
    expect(args).not.toContain('--logger_plugin=kolide_grpc');
    expect(args.some((a) => a.startsWith('--distributed_plugin'))).toBe(false);
    expect(args).toContain('--watchdog_memory_limit=300');
    expect(args).toContain('--extensions_interval=1');
    expect(args).toContain('--config_refresh=10');
    expect(args.slice(-3)).toEqual(['--extensions_timeout=3', '--config_plugin=cfg', '--extensions_require=tenant_ext']);
  });
});

describe('normaliseUserFlags', () => {
  it('accepts name, name=value and --name=value', () => {
    expect(normaliseUserFlags(['verbose', 'logger_min_status=1', '--host_identifier=hostname'])).toEqual([
      '--verbose',
      '--logger_min_status=1',
      '--host_identifier=hostname',
    ]);
  });

  it.each([
    ['--pidfile=/tmp/x'],
    ['database_path=/tmp/db'],
    ['--extensions_socket=/tmp/s'],
    ['--disable_extensions=true'],
    ['--nodisable_extensions'],
    ['extensions_timeout=1'],
    ['--config_plugin=filesystem'],
    ['--extensions_require=other'],
    ['--flagfile=/etc/evil.flags'],
  ])('refuses %s, which the supervisor owns', (flag) => {
    expect(() => normaliseUserFlags([flag])).toThrow(/cannot be overridden/);
  });

  it.each([['--'], ['---x'], ['Bad=1'], ['--a b'], ['=1']])('refuses malformed %j', (flag) => {
    expect(() => normaliseUserFlags([flag])).toThrow(/is not a flag/);
  });
});

describe('extensionFlagNames', () => {
  it('requires a config plugin', () => {
    const ext = { name: 'e', plugins: [], start: () => undefined, stop: async () => undefined };
    expect(() => extensionFlagNames(ext)).toThrow(/no config plugin/);
  });
});
