/**
 * The supervisor as a real process: `bin/launcher run --config FILE` with
 * the config written here, its output captured (bounded), observed through
 * the control API over mutual TLS, and killed the way a scenario needs
 * (SIGKILL at a chosen moment, or SIGTERM and wait). Config-file timings
 * only: what a deployed supervisor can be given.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initCertificates, type CertsInitResult } from '../../src/control/certs-init.js';
import { ControlClient } from '../../src/control/client.js';
import type { InstanceInfo } from '../../src/state/types.js';
import { LAUNCHER_BIN, OSQUERYD_SIM } from './paths.js';
import { waitFor } from './wait.js';

export interface RegistrationSpec {
  id: string;
  secret: string;
  osqueryFlags?: string[];
}

export interface ControlCerts {
  certs: CertsInitResult;
  roles: Record<string, string>;
}

/** Control API certificates (CA, server, admin client) in `dir/certs`. */
export async function controlCerts(dir: string): Promise<ControlCerts> {
  const certs = await initCertificates({ dir: join(dir, 'certs') });
  const roles = JSON.parse(readFileSync(certs.rolesFile, 'utf8')) as Record<string, string>;
  return { certs, roles };
}

export interface LauncherProcessOptions {
  /** Short working directory: config file and control socket live here. */
  dir: string;
  root: string;
  deviceUrl: string;
  registrations: RegistrationSpec[];
  control: ControlCerts;
  osquerydPath?: string;
  /** Top-level config fields merged over the defaults below (log_buffer, health, ...). */
  config?: Record<string, unknown>;
  /** Extra environment for the supervisor (inherited by its osqueryds), e.g. OSQUERYD_SIM_FAULTS. */
  env?: Record<string, string>;
  /** Output lines kept for failure reports. Default 4000. */
  keepLines?: number;
  /** Another build's bin/launcher (benchmarks comparing with older code). Default this repository's. */
  launcherBin?: string;
}

export interface ProcessEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class LauncherProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly client: ControlClient;
  readonly exited: Promise<ProcessEnd>;
  readonly configPath: string;
  /** How many log records carried each message (every line, not only the kept ones). */
  readonly msgCounts = new Map<string, number>();
  /** Log records at error level or above (pino 50+), every line, not only the kept ones. */
  errorRecords = 0;
  /** The first error records (at most 10, each cut to 600 characters), for a failure message. */
  readonly errorLines: string[] = [];
  private readonly lines: string[] = [];
  private readonly keep: number;
  private partial = '';
  private end: ProcessEnd | undefined;

  private constructor(o: LauncherProcessOptions) {
    this.keep = o.keepLines ?? 4000;
    const listen = `unix://${join(o.dir, 'ctl.sock')}`;
    const { certs, roles } = o.control;
    const config = {
      root_directory: o.root,
      osqueryd_path: o.osquerydPath ?? OSQUERYD_SIM,
      log_level: 'info',
      device_server: { url: o.deviceUrl, insecure_transport: true },
      registrations: o.registrations.map((r) => ({ id: r.id, enroll_secret: r.secret, osquery_flags: r.osqueryFlags ?? [] })),
      control: { listen, ca: certs.caCert, cert: certs.serverCert, key: certs.serverKey, roles },
      log_buffer: { publish_interval_seconds: 0.2 },
      health: { interval_seconds: 1, startup_delay_seconds: 1, failures: 3 },
      distributed_forwarding_interval_seconds: 1,
      ...o.config,
    };
    this.configPath = join(o.dir, 'launcher.yaml');
    writeFileSync(this.configPath, `${JSON.stringify(config, null, 2)}\n`); // JSON is YAML
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LAUNCHER_') && k !== 'OSQUERYD_SIM_FAULTS') env[k] = v;
    Object.assign(env, { LAUNCHER_LOG_FORMAT: 'json' }, o.env);
    this.child = spawn(process.execPath, [o.launcherBin ?? LAUNCHER_BIN, 'run', '--config', this.configPath], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.child.pid === undefined) throw new Error(`cannot start ${LAUNCHER_BIN}`);
    this.pid = this.child.pid;
    const onData = (d: Buffer) => this.take(d.toString());
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.end = { code, signal };
        resolve(this.end);
      }),
    );
    this.client = new ControlClient({
      target: listen,
      ca: certs.caCert,
      cert: join(certs.dir, 'admin.pem'),
      key: join(certs.dir, 'admin.key'),
      callTimeoutMs: 15_000,
    });
  }

  static start(o: LauncherProcessOptions): LauncherProcess {
    return new LauncherProcess(o);
  }

  get running(): boolean {
    return this.end === undefined;
  }

  /** Every registration in `ids` is healthy with a pid; returns their instances. */
  async waitHealthy(ids: readonly string[], timeoutMs = 60_000): Promise<Map<string, InstanceInfo>> {
    return waitFor(
      `${ids.join(', ')} healthy`,
      async () => {
        if (!this.running) throw new Error(`supervisor exited ${JSON.stringify(this.end)}`);
        const all = await this.client.listInstances();
        const byId = new Map(all.map((i) => [i.id, i]));
        return ids.every((id) => byId.get(id)?.healthy && byId.get(id)?.pid) ? byId : undefined;
      },
      { timeoutMs, intervalMs: 100, explain: () => this.tail(40) },
    );
  }

  /** Send `signal` and wait for the process to end. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ProcessEnd> {
    if (this.running) this.child.kill(signal);
    const end = await this.exited;
    this.client.close();
    return end;
  }

  /** SIGTERM, then SIGKILL when it has not ended within `graceMs`. Idempotent. */
  async stop(graceMs = 30_000): Promise<ProcessEnd> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    this.client.close();
    return this.exited;
  }

  /** The supervisor's JSON log records (lines that parse), oldest first, within the kept window. */
  records(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const l of this.lines) {
      if (!l.startsWith('{')) continue;
      try {
        out.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // partial or foreign line
      }
    }
    return out;
  }

  /** The last `n` output lines, for failure messages. */
  tail(n = 60): string {
    return `--- supervisor ${this.pid} output (last ${n} lines) ---\n${this.lines.slice(-n).join('\n')}`;
  }

  private take(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) {
      this.lines.push(p);
      const m = /"msg":"((?:[^"\\]|\\.)*)"/.exec(p);
      if (m) this.msgCounts.set(m[1]!, (this.msgCounts.get(m[1]!) ?? 0) + 1);
      if (/^\{"level":(5|6)\d/.test(p)) {
        this.errorRecords++;
        if (this.errorLines.length < 10) this.errorLines.push(p.slice(0, 600));
      }
    }
    if (this.lines.length > this.keep) this.lines.splice(0, this.lines.length - this.keep);
  }
}
