// Issue 3: osqueryd-sim runs the config's schedule and packs and logs osqueryd's result and status logs.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExtensionServer } from '../../src/osquery/extension-server.js';
import type { Row, StatusLog } from '../../src/osquery/plugins.js';
import { SimHarness, waitFor } from './helpers.js';

let h: SimHarness;
beforeEach(() => {
  h = new SimHarness();
});
afterEach(async () => {
  await h.cleanup();
});

interface ResultLine {
  name: string;
  hostIdentifier: string;
  calendarTime: string;
  unixTime: number;
  epoch: number;
  counter: number;
  numerics: boolean;
  columns?: Row;
  action: string;
  snapshot?: Row[];
}

const CALENDAR = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d \d{4} UTC$/;

describe('scheduled queries', () => {
  it("runs a config plugin's schedule and packs; differential results reach the logger plugin as added/removed across runs", async () => {
    const p = h.paths();
    let rows: Row[] = [
      { id: '1', v: 'a' },
      { id: '2', v: 'b' },
    ];
    const results: Array<{ text: string; kind: string }> = [];
    const statuses: StatusLog[] = [];
    const packRequests: Array<[string, string]> = [];
    const config = {
      schedule: {
        rows: { query: 'select id, v from sim_rows', interval: 1 },
        snap: { query: 'select count(*) as n from sim_rows', interval: 1, snapshot: true },
        other_os: { query: 'select 1', interval: 1, platform: 'windows' },
      },
      packs: { strpack: 'pack-source' },
    };
    const ext = new ExtensionServer({
      name: 'cfgext',
      managerPath: p.socket,
      pingIntervalMs: 0,
      plugins: [
        {
          kind: 'table',
          name: 'sim_rows',
          columns: [
            { name: 'id', type: 'INTEGER' },
            { name: 'v', type: 'TEXT' },
          ],
          generate: () => rows,
        },
        {
          kind: 'config',
          name: 'cfgext',
          genConfig: async () => ({ main: JSON.stringify(config) }),
          genPack: async (name, value) => {
            packRequests.push([name, value]);
            return JSON.stringify({ queries: { ver: { query: 'select version from osquery_info', interval: 1 } } });
          },
        },
        {
          kind: 'logger',
          name: 'cfgext',
          features: 1,
          logString: (text, kind) => void results.push({ text, kind }),
          logStatus: (entries) => void statuses.push(...entries),
        },
      ],
    });
    h.defer(() => ext.stop());
    const { sim } = await h.start(p, [
      '--config_plugin=cfgext',
      '--logger_plugin=cfgext',
      '--extensions_require=cfgext',
      '--extensions_timeout=10',
      '--pack_delimiter=:',
      '--host_identifier=specified',
      '--specified_identifier=host-1',
    ]);
    await ext.start();
    const parsed = () => results.map((r) => ({ kind: r.kind, line: JSON.parse(r.text) as ResultLine }));
    const ofRows = () => parsed().filter((r) => r.line.name === 'rows');

    await waitFor(() => ofRows().length >= 2, 10_000, 'first results of rows');
    const first = ofRows().slice(0, 2);
    expect(first.map((r) => [r.kind, r.line.action, r.line.counter, r.line.columns])).toEqual([
      ['string', 'added', 0, { id: '1', v: 'a' }],
      ['string', 'added', 0, { id: '2', v: 'b' }],
    ]);
    const line = first[0]!.line;
    expect(Object.keys(line)).toEqual([
      'name',
      'hostIdentifier',
      'calendarTime',
      'unixTime',
      'epoch',
      'counter',
      'numerics',
      'columns',
      'action',
    ]);
    expect(line.hostIdentifier).toBe('host-1');
    expect(line.calendarTime).toMatch(CALENDAR);
    expect(line.numerics).toBe(false);

    rows = [
      { id: '2', v: 'b' },
      { id: '3', v: 'c' },
    ];
    // The run after the change logs one removed and one added line (two logger calls).
    const changed = () => {
      const first = ofRows().find((r) => r.line.counter > 0);
      return first ? ofRows().filter((r) => r.line.counter === first.line.counter) : [];
    };
    await waitFor(() => changed().length >= 2, 10_000, 'the diff of the changed rows');
    expect(changed().map((r) => [r.line.action, r.line.columns])).toEqual([
      ['removed', { id: '1', v: 'a' }],
      ['added', { id: '3', v: 'c' }],
    ]);

    const snap = parsed().find((r) => r.line.name === 'snap')!;
    expect(snap.kind).toBe('snapshot');
    expect(snap.line.action).toBe('snapshot');
    expect(Object.keys(snap.line).slice(0, 3)).toEqual(['snapshot', 'action', 'name']);
    expect(snap.line.snapshot).toEqual([{ n: '2' }]);

    expect(packRequests).toEqual([['strpack', 'pack-source']]);
    await waitFor(() => parsed().some((r) => r.line.name === 'pack:strpack:ver'), 10_000, 'pack query result');
    expect(parsed().some((r) => r.line.name === 'other_os')).toBe(false);

    // Status logs arrive in short-key batches, start-up lines included.
    await waitFor(() => statuses.some((s) => s.m === 'osqueryd started [version=5.12.1-sim]'), 10_000, 'relayed status log');
    const started = statuses.find((s) => s.m === 'osqueryd started [version=5.12.1-sim]')!;
    expect(started).toMatchObject({ s: 0, f: 'init.cpp', h: 'host-1' });
    expect(started.c).toMatch(CALENDAR);
    expect(started.u).toBeGreaterThan(1_600_000_000);

    const scheduled = h.queryLog(p).filter((q) => q.source === 'schedule');
    expect(new Set(scheduled.map((q) => q.name))).toEqual(new Set(['rows', 'snap', 'pack:strpack:ver']));
    expect(sim.stderr).toContain('Registering extension (cfgext,');
  });

  it('with the filesystem plugins, keeps diff state in --database_path across a restart', async () => {
    const p = h.paths();
    writeFileSync(
      p.configPath,
      ['// comments are stripped', '{"schedule": {"me": {"query": "select pid from osquery_info", "interval": 1}}}'].join('\n'),
    );
    const resultsFile = join(p.loggerPath, 'osqueryd.results.log');
    const lines = () =>
      existsSync(resultsFile)
        ? readFileSync(resultsFile, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as ResultLine)
        : [];

    const { sim: first } = await h.start(p);
    await waitFor(() => lines().length >= 1, 10_000, 'first result line');
    expect(lines()[0]).toMatchObject({ name: 'me', counter: 0, action: 'added', columns: { pid: String(first.pid) } });
    first.proc.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);

    const { sim: second } = await h.start(p);
    await waitFor(() => lines().length >= 3, 10_000, 'diff against the previous run (removed + added)');
    const diff = lines().slice(1);
    expect(diff.map((l) => [l.action, l.columns])).toEqual([
      ['removed', { pid: String(first.pid) }],
      ['added', { pid: String(second.pid) }],
    ]);
    expect(diff[0]!.counter).toBeGreaterThan(0);
    const info = readFileSync(join(p.loggerPath, 'osqueryd.INFO'), 'utf8');
    expect(info).toMatch(/^I\d{4} [\d:.]+ +\d+ init\.cpp:\d+\] osqueryd started \[version=5\.12\.1-sim\]$/m);
  });

  it('--config_refresh re-reads the config, on --config_accelerated_refresh after a failure', async () => {
    const p = h.paths();
    let calls = 0;
    const ext = new ExtensionServer({
      name: 'refresher',
      managerPath: p.socket,
      pingIntervalMs: 0,
      plugins: [
        {
          kind: 'config',
          name: 'refresher',
          genConfig: async () => {
            calls++;
            if (calls === 1) throw new Error('config server down');
            return { main: JSON.stringify({ schedule: { late: { query: 'select 7 as seven', interval: 60 } } }) };
          },
        },
      ],
    });
    h.defer(() => ext.stop());
    const { sim, client } = await h.start(p, [
      '--config_plugin=refresher',
      '--extensions_require=refresher',
      '--extensions_timeout=10',
      '--config_refresh=60',
      '--config_accelerated_refresh=1',
    ]);
    await ext.start();
    await sim.waitForStderr(/E.* config\.cpp:\d+\] Error reading config: config server down/);
    await waitFor(
      async () => (await client.query('select config_valid from osquery_info'))[0]!.config_valid === '1',
      10_000,
      'config loaded on the accelerated refresh',
    );
    expect(calls).toBe(2);
    await waitFor(
      async () => (await client.query("select executions from osquery_schedule where name = 'late'"))[0]?.executions === '1',
      10_000,
      'the new schedule ran',
    );
    const [row] = await client.query('select name, query, interval from osquery_schedule');
    expect(row).toEqual({ interval: expect.stringMatching(/^(5[4-9]|6[0-6])$/), name: 'late', query: 'select 7 as seven' });
  });

  it('--logger_event_type=false logs one batch line with diffResults', async () => {
    const p = h.paths();
    writeFileSync(p.configPath, '{"schedule": {"one": {"query": "select 1 as one", "interval": 1}}}');
    const resultsFile = join(p.loggerPath, 'osqueryd.results.log');
    await h.start(p, ['--logger_event_type=false', '--logger_numerics']);
    await waitFor(() => existsSync(resultsFile) && readFileSync(resultsFile, 'utf8').length > 0, 10_000, 'a result line');
    const line = JSON.parse(readFileSync(resultsFile, 'utf8').split('\n')[0]!) as Record<string, unknown>;
    expect(Object.keys(line)).toEqual([
      'name',
      'hostIdentifier',
      'calendarTime',
      'unixTime',
      'epoch',
      'counter',
      'numerics',
      'diffResults',
    ]);
    expect(line).toMatchObject({ name: 'one', counter: 0, numerics: true, diffResults: { removed: [], added: [{ one: '1' }] } });
  });
});
