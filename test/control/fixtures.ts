/**
 * Shared set-up for the control API tests: real certificates in a short temp
 * dir, a real server on a real Unix socket, and a fake ControlTarget with
 * in-memory instances and a real OutputRing per instance.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { expect } from 'vitest';
import { LauncherError } from '../../src/errors.js';
import { ControlCallError } from '../../src/control/call-error.js';
import { initCertificates, type CertsInitResult } from '../../src/control/certs-init.js';
import { ControlClient } from '../../src/control/client.js';
import { startControlServer, type ControlServer, type ControlServerOptions } from '../../src/control/server.js';
import type { AddRegistrationInput, ControlTarget, InstanceInfo, QuarantineState, RunRecord } from '../../src/control/target.js';
import { OutputRing } from '../../src/runtime/instance/output-ring.js';
import { shortTempDir } from '../helpers/tmp.js';

export function instance(id: string, overrides: Partial<InstanceInfo> = {}): InstanceInfo {
  return {
    id,
    state: 'running',
    pid: 4242,
    run_id: `run-${id}-1`,
    started_at: 1_700_000_000_000,
    connected_at: 1_700_000_001_000,
    uptime_seconds: 12.5,
    healthy: true,
    restarts: 1,
    last_error: null,
    limits: { memory_mb: 512, cpu_percent: 50, mode: 'cgroup-v2' },
    buffers: { result_count: 3, status_count: 4, bytes: 1234, dropped: 0 },
    osqueryd_path: '/usr/local/bin/osqueryd',
    osqueryd_version: '5.12.1',
    device: { state: 'enrolled', error: null, since: null },
    device_url: 'https://device.example',
    isolation: { mode: 'filesystem', reason: null, disabled_tables: 'curl,curl_certificate,carves' },
    ...overrides,
  };
}

/** In-memory ControlTarget: instances in a Map, one real OutputRing per instance. */
export class FakeTarget implements ControlTarget {
  readonly instances = new Map<string, InstanceInfo>();
  readonly rings = new Map<string, OutputRing>();
  readonly added: AddRegistrationInput[] = [];
  readonly queries: Array<{ id: string; sql: string; timeoutMs: number }> = [];
  ringCapacity = 10_000;
  /** When set, query() throws it. */
  queryError: Error | undefined;

  constructor(ids: string[] = ['acme', 'globex']) {
    for (const id of ids) this.put(instance(id));
  }

  put(info: InstanceInfo): void {
    this.instances.set(info.id, info);
    this.rings.set(info.id, new OutputRing({ runId: info.run_id ?? '', capacity: this.ringCapacity }));
  }

  ring(id: string): OutputRing {
    const ring = this.rings.get(id);
    if (!ring) throw new Error(`no ring for ${id}`);
    return ring;
  }

  /** Start a new run with a fresh ring (the old one is closed). */
  newRun(id: string, capacity = this.ringCapacity): OutputRing {
    this.rings.get(id)?.close();
    const ring = new OutputRing({ runId: `run-${id}-${Date.now()}`, capacity });
    this.rings.set(id, ring);
    return ring;
  }

  private need(id: string): InstanceInfo {
    const info = this.instances.get(id);
    if (!info) throw new LauncherError('E_NOT_FOUND', `registration '${id}' does not exist`);
    return info;
  }

  version() {
    return { serverVersion: '0.1.0-test', apiVersion: 'v1', features: ['fake-target'] };
  }

  health() {
    const list = [...this.instances.values()];
    return { healthy: list.every((i) => i.healthy), instances: list.map((i) => ({ id: i.id, healthy: i.healthy, state: i.state })) };
  }

  listInstances(): InstanceInfo[] {
    return [...this.instances.values()];
  }

  getInstance(id: string): InstanceInfo | undefined {
    return this.instances.get(id);
  }

  async addRegistration(req: AddRegistrationInput): Promise<InstanceInfo> {
    if (this.instances.has(req.id)) throw new LauncherError('E_ALREADY_EXISTS', `registration '${req.id}' already exists`);
    this.added.push(req);
    const info = instance(req.id, {
      state: 'starting',
      limits: { memory_mb: req.limits?.memory_mb ?? null, cpu_percent: req.limits?.cpu_percent ?? null, mode: 'watchdog' },
    });
    this.put(info);
    return info;
  }

  async removeRegistration(id: string): Promise<void> {
    this.need(id);
    this.instances.delete(id);
    this.rings.get(id)?.close();
    this.rings.delete(id);
  }

  async restartInstance(id: string): Promise<InstanceInfo> {
    const info = this.need(id);
    const next = { ...info, restarts: info.restarts + 1, run_id: `run-${id}-${info.restarts + 2}` };
    this.instances.set(id, next);
    return next;
  }

  async query(id: string, sql: string, timeoutMs: number): Promise<Array<Record<string, string>>> {
    this.need(id);
    this.queries.push({ id, sql, timeoutMs });
    if (this.queryError) throw this.queryError;
    return [
      { name: 'osqueryd', pid: '4242' },
      { name: `tenant ${id}`, pid: '' },
    ];
  }

  history(id: string, limit: number): RunRecord[] {
    this.need(id);
    const runs: RunRecord[] = [
      {
        registration_id: id,
        run_id: `run-${id}-2`,
        osqueryd_path: '/usr/local/bin/osqueryd',
        version: '5.12.1',
        pid: 4242,
        start_time: 1_700_000_100_000,
        connect_time: 1_700_000_101_000,
        exit_time: null,
        exit_code: null,
        signal: null,
        error: null,
      },
      {
        registration_id: id,
        run_id: `run-${id}-1`,
        osqueryd_path: '/usr/local/bin/osqueryd',
        version: null,
        pid: 4100,
        start_time: 1_700_000_000_000,
        connect_time: null,
        exit_time: 1_700_000_050_000,
        exit_code: 0,
        signal: 'SIGKILL',
        error: 'killed by the watchdog',
      },
    ];
    return runs.slice(0, limit);
  }

  output(id: string): OutputRing | undefined {
    return this.rings.get(id);
  }

  /** Quarantined queries (issue 16), any registration. */
  quarantined: QuarantineState[] = [];

  listQuarantine(ids: readonly string[] | undefined): QuarantineState[] {
    return this.quarantined.filter((q) => !ids || ids.includes(q.registration_id));
  }

  async releaseQuarantine(id: string, query: string): Promise<QuarantineState[]> {
    const hit = this.quarantined.filter((q) => q.registration_id === id && (q.release_handle === query || q.sql === query));
    if (hit.length === 0) throw new LauncherError('E_NOT_FOUND', `registration ${id} has no quarantined query matching ${query}`);
    this.quarantined = this.quarantined.filter((q) => !hit.includes(q));
    return hit;
  }
}

/** A pino logger whose JSON lines are collected in `lines`. */
export function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

export interface Pki {
  dir: string;
  certs: CertsInitResult;
  roles: Record<string, string>;
  /** Paths of an identity's files by name ('admin', 'tenant-acme', ...). */
  identity(name: string): { ca: string; cert: string; key: string };
  cleanup(): void;
}

/** certs init with tenants acme and globex (plus extra identities) in a short temp dir. */
export async function makePki(extraTenants: string[] = []): Promise<Pki> {
  const { dir, cleanup } = shortTempDir('ctl');
  const certs = await initCertificates({ dir, tenants: ['acme', 'globex', ...extraTenants] });
  const roles = JSON.parse(readFileSync(certs.rolesFile, 'utf8')) as Record<string, string>;
  return {
    dir,
    certs,
    roles,
    identity: (name) => ({ ca: certs.caCert, cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) }),
    cleanup,
  };
}

export async function startServer(pki: Pki, target: ControlTarget, options: Partial<ControlServerOptions> = {}): Promise<ControlServer> {
  return startControlServer({
    target,
    listen: `unix://${join(pki.dir, 'control.sock')}`,
    ca: pki.certs.caCert,
    cert: pki.certs.serverCert,
    key: pki.certs.serverKey,
    roles: pki.roles,
    ...options,
  });
}

export function clientFor(pki: Pki, server: ControlServer, name: string): ControlClient {
  return new ControlClient({ target: server.address, ...pki.identity(name) });
}

/** Await a call that must fail with a ControlCallError, and return that error. */
export async function failure(p: Promise<unknown>): Promise<ControlCallError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ControlCallError);
    return err as ControlCallError;
  }
  throw new Error('expected the call to fail');
}
