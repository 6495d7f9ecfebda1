// Issue 7: state tables defined once; tenant scoping enforced where rows are produced.
import { describe, expect, it } from 'vitest';
import { stateTablePlugins, instancesTable, historyTable } from '../../src/state/tables.js';
import { readRows, renderRow, stateTablePlugin } from '../../src/state/table.js';
import { launcherInfoTable } from '../../src/state/launcher-info.js';
import { LAUNCHER_INFO_COLUMNS } from '../../extensions/kolide_grpc/index.js';
import type { StateSource } from '../../src/state/tables.js';
import type { InstanceInfo, LauncherInfo } from '../../src/state/types.js';
import { join } from 'node:path';
import { openDatabase } from '../../src/store/database.js';
import { QuarantineStore } from '../../src/store/quarantine.js';
import { toQuarantineState } from '../../src/app/state-source.js';
import { shortTempDir } from '../helpers/tmp.js';

function instance(id: string, pid: number): InstanceInfo {
  return {
    id,
    state: 'running',
    pid,
    run_id: `run-${id}`,
    started_at: 1_700_000_000_000,
    connected_at: 1_700_000_001_000,
    uptime_seconds: 5,
    healthy: true,
    restarts: 0,
    last_error: null,
    limits: { memory_mb: 600, cpu_percent: null, mode: 'watchdog' },
    buffers: { result_count: 1, status_count: 2, bytes: 3, dropped: 0 },
    osqueryd_path: '/x',
    osqueryd_version: '5.12.1',
    device: { state: 'enrolled', error: null, since: null },
    device_url: 'https://device.example',
    isolation: { mode: 'none', reason: null, disabled_tables: '' },
  };
}

const calls: Array<readonly string[] | undefined> = [];
const source: StateSource = {
  registrations: () => [],
  instances: (ids) => {
    calls.push(ids);
    return [instance('kolide', 10), instance('acme', 11), instance('globex', 12)].filter((i) => !ids || ids.includes(i.id));
  },
  history: () => [
    {
      registration_id: 'acme',
      run_id: 'r1',
      osqueryd_path: '/x',
      version: '5',
      pid: 1,
      start_time: 1_700_000_000_000,
      connect_time: null,
      exit_time: null,
      exit_code: null,
      signal: 'SIGKILL',
      error: 'killed',
    },
  ],
  logBuffers: () => [],
  quarantine: () => [],
  checkups: () => [
    {
      name: 'cgroups',
      status: 'warn',
      detail: 'memory: not writable',
      checked_at: 1_700_000_100_000,
      changed_at: 1_700_000_000_000,
      previous_status: 'pass',
    },
  ],
  updates: () => [],
};

describe('state tables', () => {
  it('the vendor scope sees every instance; a tenant only its own, whatever it asks for', async () => {
    const all = stateTablePlugins(() => source, { kind: 'all' }).find((t) => t.name === 'kolide_launcher_instances')!;
    const acme = stateTablePlugins(() => source, { kind: 'tenant', registrationId: 'acme' }).find(
      (t) => t.name === 'kolide_launcher_instances',
    )!;
    expect((await all.generate({ constraints: [] })).map((r) => r.registration_id)).toEqual(['kolide', 'acme', 'globex']);
    expect((await acme.generate({ constraints: [] })).map((r) => r.registration_id)).toEqual(['acme']);
    // Asking for another tenant's row by constraint yields nothing.
    const sneaky = { constraints: [{ name: 'registration_id', affinity: 'TEXT', list: [{ op: 2, expr: 'globex' }] }] };
    expect(await acme.generate(sneaky)).toEqual([]);
  });

  it('uses registration_id = ? constraints to narrow the read', async () => {
    const all = stateTablePlugins(() => source, { kind: 'all' }).find((t) => t.name === 'kolide_launcher_instances')!;
    calls.length = 0;
    const rows = await all.generate({ constraints: [{ name: 'registration_id', affinity: 'TEXT', list: [{ op: 2, expr: 'globex' }] }] });
    expect(rows.map((r) => r.pid)).toEqual(['12']);
    expect(calls[0]).toEqual(['globex']);
    expect(all.columns.find((c) => c.name === 'registration_id')!.options).toBe(1);
  });

  it('renders cells as osquery strings and keeps launcher history column names first', () => {
    const [row] = readRows(instancesTable, source, { kind: 'tenant', registrationId: 'kolide' });
    expect(row!.id).toBe('kolide');
    const plugin = stateTablePlugins(() => source, { kind: 'all' }).find((t) => t.name === historyTable.name)!;
    expect(plugin.columns.slice(0, 9).map((c) => c.name)).toEqual([
      'enrollment_id',
      'instance_run_id',
      'start_time',
      'connect_time',
      'exit_time',
      'hostname',
      'instance_id',
      'version',
      'errors',
    ]);
  });

  it('renders nested fields through the declared field path', () => {
    const row = renderRow(instancesTable, instance('acme', 7));
    expect(row).toMatchObject({
      registration_id: 'acme',
      limit_mode: 'watchdog',
      memory_limit_mb: '600',
      cpu_limit_percent: '',
      buffered_statuses: '2',
      healthy: '1',
      started_at: '1700000000',
    });
    expect(instancesTable.columns.find((c) => c.name === 'limit_mode')!.field).toBe('limits.mode');
  });

  it("kolide_launcher_info: launcher's columns from one definition, one row the asking instance owns", async () => {
    expect(LAUNCHER_INFO_COLUMNS).toEqual(launcherInfoTable.columns.map((c) => c.name));
    expect(LAUNCHER_INFO_COLUMNS.slice(0, 12)).toEqual([
      'branch',
      'build_date',
      'build_user',
      'go_version',
      'goarch',
      'goos',
      'revision',
      'version',
      'version_chain',
      'enrollment_id',
      'identifier',
      'osquery_instance_id',
    ]);
    expect(launcherInfoTable.columns.every((c) => c.type === 'TEXT')).toBe(true);
    const info = Object.fromEntries(launcherInfoTable.columns.map((c) => [c.field, ''])) as unknown as LauncherInfo;
    const plugin = stateTablePlugin(launcherInfoTable, () => ({ launcherInfo: () => ({ ...info, enrollment_id: 'acme', uptime: 42 }) }), {
      kind: 'tenant',
      registrationId: 'acme',
    });
    const rows = await plugin.generate({ constraints: [] });
    expect(rows).toHaveLength(1);
    expect(Object.keys(rows[0]!)).toEqual([...LAUNCHER_INFO_COLUMNS]);
    expect(rows[0]).toMatchObject({ enrollment_id: 'acme', uptime: '42' });
  });
  it('kolide_launcher_quarantine (issue 16): rows from the real store; a tenant sees only its own', async () => {
    const tmp = shortTempDir('qt');
    const db = openDatabase(join(tmp.dir, 'l.db'));
    try {
      const store = new QuarantineStore(db);
      const policy = { incidents: 1, windowMs: 3600_000, ttlMs: 3600_000 };
      await store.recordIncident('acme', { kind: 'scheduled', name: 'boom', sql: "select 'x'" }, 'crashed', policy);
      await store.recordIncident('globex', { kind: 'distributed', name: 'q9', sql: 'select secret from globex' }, 'crashed', policy);
      const qsource: StateSource = { ...source, quarantine: (ids) => store.list(ids).map(toQuarantineState) };
      const table = (scope: Parameters<typeof stateTablePlugins>[1]) =>
        stateTablePlugins(() => qsource, scope).find((t) => t.name === 'kolide_launcher_quarantine')!;
      const all = await table({ kind: 'all' }).generate({ constraints: [] });
      expect(all.map((r) => r.registration_id).sort()).toEqual(['acme', 'globex']);
      const acme = table({ kind: 'tenant', registrationId: 'acme' });
      const own = await acme.generate({ constraints: [] });
      expect(own).toHaveLength(1);
      expect(own[0]).toMatchObject({
        registration_id: 'acme',
        kind: 'scheduled',
        name: 'boom',
        query: "select 'x'",
        incidents: '1',
        release_handle: 'boom',
      });
      expect(Number(own[0]!.expires_at) - Number(own[0]!.quarantined_at)).toBe(3600);
      const sneaky = { constraints: [{ name: 'registration_id', affinity: 'TEXT', list: [{ op: 2, expr: 'globex' }] }] };
      expect(await acme.generate(sneaky)).toEqual([]);
    } finally {
      db.close();
      tmp.cleanup();
    }
  });

  it('kolide_launcher_checkups: host-level rows for the vendor, none for a tenant (issue 18)', async () => {
    const table = (scope: Parameters<typeof stateTablePlugins>[1]) =>
      stateTablePlugins(() => source, scope).find((t) => t.name === 'kolide_launcher_checkups')!;
    expect(await table({ kind: 'all' }).generate({ constraints: [] })).toEqual([
      {
        name: 'cgroups',
        status: 'warn',
        detail: 'memory: not writable',
        checked_at: '1700000100',
        changed_at: '1700000000',
        previous_status: 'pass',
      },
    ]);
    expect(await table({ kind: 'tenant', registrationId: 'acme' }).generate({ constraints: [] })).toEqual([]);
  });
});
