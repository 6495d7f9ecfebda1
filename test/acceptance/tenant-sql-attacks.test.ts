// Issue 13 (critical): as tenant acme, SQL sent through the control API (`launcher ctl query acme …` and the control
// client with acme's certificate) and through a distributed query queued by acme's backend (the local device server's
// admin endpoint, with its token) could ATTACH the supervisor's launcher.sqlite, read the vendor's node key, change
// registrations, plant triggers, hold the database locked or create files. A real supervisor (`bin/launcher run`), real
// stand-in osqueryds, the real device server and mTLS control API: every variant is refused with osqueryd's status
// (code 1, SQLite's "not authorized"), and afterwards launcher.sqlite has the same rows, the same schema, and no file
// appeared.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { shortTempDir, waitFor } from '../helpers/tmp.js';
import { snapshotDatabase, sqlAttacks, type DatabaseSnapshot } from '../helpers/sql-attacks.js';
import { writeSupervisorConfig } from '../helpers/supervisor-config.js';
import { startDevServer, type DevServer } from '../../src/devserver/index.js';
import { initCertificates } from '../../src/control/certs-init.js';
import { ControlClient } from '../../src/control/client.js';
import { ExtensionManagerClient, ExtensionStatusError } from '../../src/osquery/client.js';

const repo = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
/** Tables the running supervisor itself writes all the time (buffered status logs, run records, config refreshes). */
const VOLATILE = ['log_buffer_entries', 'log_buffer_counters', 'log_buffer_streams', 'run_history', 'config_cache_entries'];
/** The store makes one table per log stream (`log_buffer_s<N>`, src/store/log-streams.ts) as logs arrive. */
const isVolatile = (table: string): boolean => VOLATILE.includes(table) || /^log_buffer_s\d+$/.test(table);

let tmp: ReturnType<typeof shortTempDir>;
let dev: DevServer;
let admin: ControlClient;
let acme: ControlClient;
let supervisor: ChildProcess | undefined;
let output = '';
let tenantConfig = '';
let before: DatabaseSnapshot;
/** What each entry point answered, written to $SECURITY_REPORT (JSON) for bench/results/reliability.md. */
const observed: Array<{ entry: string; attack: string; answer: string }> = [];
const root = () => join(tmp.dir, 'root');
const dbFile = () => join(root(), 'launcher.sqlite');
const fresh = () => join(root(), 'created-by-attack.sqlite');
const attacks = () => sqlAttacks(dbFile(), fresh());

/** The snapshot without what the supervisor changes by itself: volatile tables, their AUTOINCREMENT counters, WAL/SHM files. */
function stable(s: DatabaseSnapshot): DatabaseSnapshot {
  const rows = Object.fromEntries(Object.entries(s.rows).filter(([t]) => !isVolatile(t)));
  if (rows.sqlite_sequence) rows.sqlite_sequence = rows.sqlite_sequence.filter((r) => !isVolatile((r as { name: string }).name));
  const schema = s.schema.filter((r) => !isVolatile((r as { tbl_name: string }).tbl_name));
  return { ...s, rows, schema, files: s.files.filter((f) => !/launcher\.sqlite-(wal|shm)$/.test(f)) };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) throw new Error('expected a refusal, the query returned rows');
  return (err as Error).message;
}

beforeAll(async () => {
  tmp = shortTempDir('atk');
  for (const t of ['kolide', 'acme']) writeFileSync(join(tmp.dir, `${t}.secret`), `secret-${t}\n`);
  dev = await startDevServer({
    tenants: [
      { name: 'kolide', secrets: ['secret-kolide'] },
      { name: 'acme', secrets: ['secret-acme'] },
    ],
  });
  const listen = `unix://${join(tmp.dir, 'ctl.sock')}`;
  const certs = await initCertificates({ dir: join(tmp.dir, 'certs'), tenants: ['acme'], target: listen });
  writeSupervisorConfig(join(tmp.dir, 'launcher.yaml'), {
    repo,
    root: root(),
    deviceServerUrl: dev.url,
    registrations: ['kolide', 'acme'].map((id) => ({ id, secretPath: join(tmp.dir, `${id}.secret`) })),
    listen,
    certs,
  });
  admin = new ControlClient({ target: listen, ca: certs.caCert, cert: join(certs.dir, 'admin.pem'), key: join(certs.dir, 'admin.key') });
  acme = new ControlClient({
    target: listen,
    ca: certs.caCert,
    cert: join(certs.dir, 'tenant-acme.pem'),
    key: join(certs.dir, 'tenant-acme.key'),
  });
  tenantConfig = join(certs.dir, 'ctl-tenant-acme.json');
  supervisor = spawn(process.execPath, [join(repo, 'bin/launcher'), 'run', '--config', join(tmp.dir, 'launcher.yaml')], {
    env: { ...process.env, LAUNCHER_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  supervisor.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  supervisor.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  try {
    for (const id of ['kolide', 'acme']) {
      await waitFor(
        async () => {
          const i = await admin.getInstance(id).catch(() => undefined);
          return i?.healthy && i.pid;
        },
        45_000,
        `${id} healthy`,
      );
    }
    await waitFor(() => dev.nodes('kolide').length === 1 && dev.nodes('acme').length === 1, 20_000, 'both enrolled');
  } catch (err) {
    throw new Error(`${(err as Error).message}\nsupervisor output:\n${output.split('\n').slice(-40).join('\n')}`);
  }
  before = snapshotDatabase(dbFile());
  // The vendor's node key and registration are what the attack was after.
  expect(before.rows.node_keys_registrations!.some((r) => (r as { registration_id: string }).registration_id === 'kolide')).toBe(true);
}, 120_000);

afterAll(async () => {
  if (process.env.SECURITY_REPORT) writeFileSync(process.env.SECURITY_REPORT, `${JSON.stringify(observed, null, 2)}\n`);
  admin?.close();
  acme?.close();
  const child = supervisor;
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await dev?.close();
  tmp?.cleanup();
});

describe('tenant acme attacks the supervisor database through its osqueryd', () => {
  it('through the control API as tenant acme: every variant is refused with "not authorized"', async () => {
    for (const a of attacks()) {
      const message = await refusal(acme.query('acme', a.sql, 10_000));
      observed.push({ entry: 'control API (tenant acme certificate)', attack: a.name, answer: message });
      expect(message, a.name).toContain(a.message);
    }
  });

  it("through `launcher ctl query acme …` (the CLI with acme's client config): refused, non-zero exit", async () => {
    const picked = attacks().filter((a) =>
      ['ATTACH then read', '/* comment */ ATTACH', 'CTE-wrapped INSERT', 'VACUUM INTO a new path', 'BEGIN IMMEDIATE'].includes(a.name),
    );
    expect(picked).toHaveLength(5);
    for (const a of picked) {
      const res = await run(process.execPath, [join(repo, 'bin/launcher'), 'ctl', '--config', tenantConfig, 'query', 'acme', a.sql], {
        timeout: 30_000,
      }).then(
        () => undefined,
        (e: { code?: number; stderr?: string; stdout?: string }) => e,
      );
      expect(res, a.name).toBeDefined();
      expect(res!.code, a.name).not.toBe(0);
      observed.push({ entry: 'launcher ctl query acme', attack: a.name, answer: `exit ${res!.code}: ${res!.stderr!.trim()}` });
      expect(res!.stderr, a.name).toContain(a.message);
      expect(res!.stdout ?? '').not.toContain('node_key');
    }
  });

  it("through distributed queries from acme's backend (device server admin endpoint, with its token): each answered status 1", async () => {
    const names = new Map<string, { name: string; message: string }>();
    for (const a of attacks()) {
      const res = await fetch(`${dev.url}/admin/queries`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${dev.adminToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ tenant: 'acme', sql: a.sql }),
      });
      expect(res.status).toBe(200);
      names.set(((await res.json()) as { name: string }).name, { name: a.name, message: a.message });
    }
    await waitFor(
      () => [...names.keys()].every((q) => dev.results({ tenant: 'acme', queryName: q }).length > 0),
      60_000,
      'every distributed result',
    );
    for (const [q, a] of names) {
      const [result] = dev.results({ tenant: 'acme', queryName: q });
      observed.push({
        entry: 'distributed query (device server)',
        attack: a.name,
        answer: `status ${result!.status}, message ${JSON.stringify(result!.message)}`,
      });
      expect({
        attack: a.name,
        status: result!.status,
        message: result!.message,
        rows: Array.isArray(result!.rows) ? result!.rows.length : 0,
      }).toEqual({ attack: a.name, status: 1, message: a.message, rows: 0 });
    }
  });

  it("through acme's osqueryd manager socket (Thrift query and getQueryColumns): code 1, SQLite's message", async () => {
    const pid = (await admin.getInstance('acme')).pid!;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const socket = argv.find((a) => a.startsWith('--extensions_socket='))!.slice('--extensions_socket='.length);
    const thrift = new ExtensionManagerClient(socket, { timeoutMs: 10_000 });
    try {
      for (const a of attacks()) {
        for (const [method, call] of [
          ['query', () => thrift.query(a.sql)],
          ['getQueryColumns', () => thrift.getQueryColumns(a.sql)],
        ] as const) {
          // getQueryColumns compiles only the first statement (as osqueryd): the `;`-joined attack starts with a harmless read.
          if (method === 'getQueryColumns' && a.name.startsWith('; joined')) continue;
          const err = await call().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err, `${method} ${a.name}`).toBeInstanceOf(ExtensionStatusError);
          const status = (err as ExtensionStatusError).status;
          observed.push({
            entry: `manager socket ${method}`,
            attack: a.name,
            answer: `code ${status.code}, ${JSON.stringify(status.message)}`,
          });
          expect({ code: status.code, message: status.message }, `${method} ${a.name}`).toEqual({ code: 1, message: a.message });
        }
      }
    } finally {
      thrift.close();
    }
  });

  it('afterwards launcher.sqlite has the same rows and schema (no trigger, view or table), and no file was created', () => {
    const after = snapshotDatabase(dbFile());
    expect(stable(after)).toEqual(stable(before));
    expect(after.schema.filter((r) => ['trigger', 'view'].includes((r as { type: string }).type))).toEqual([]);
    expect(existsSync(fresh())).toBe(false);
  });

  it('ordinary queries still work on both paths, and the vendor was never disturbed', async () => {
    expect(await acme.query('acme', "select 'still-reads' as ok", 10_000)).toEqual([{ ok: 'still-reads' }]);
    const q = dev.addQuery('acme', 'select 7 as n');
    await waitFor(() => dev.results({ tenant: 'acme', queryName: q }).length > 0, 30_000, 'a normal distributed result');
    expect(dev.results({ tenant: 'acme', queryName: q })[0]!.rows).toEqual([{ n: '7' }]);
    const vendor = await admin.getInstance('kolide');
    expect(vendor.healthy).toBe(true);
    expect(vendor.restarts).toBe(0);
  });
});
