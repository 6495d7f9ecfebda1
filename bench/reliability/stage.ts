/**
 * The world a supervisor process runs in for a scenario: a short temp
 * directory, the real local device server (in this process) with one tenant
 * per registration, and control API certificates. Tenants are named after
 * their registrations and enroll with `secret-<id>`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevServer, type DevServer } from '../../src/devserver/index.js';
import type { ControlClient } from '../../src/control/client.js';
import { controlCerts, type ControlCerts, type LauncherProcessOptions, type RegistrationSpec } from './launcher-process.js';
import { extensionSocket } from './log-traffic.js';
import { assertBuilt } from './paths.js';
import { killAll, osquerydProcesses } from './procfs.js';
import { waitFor } from './wait.js';

export interface StageOptions {
  /** Temp directory prefix (keep it short: socket paths). */
  prefix: string;
  registrations: string[];
  /** osquery config each tenant is served (JSON). */
  tenantConfig?: (id: string) => Record<string, unknown>;
  /** Extra osqueryd flags per registration. */
  osqueryFlags?: (id: string) => string[];
}

export class Stage {
  readonly dir: string;
  readonly root: string;
  readonly dev: DevServer;
  readonly control: ControlCerts;
  readonly registrations: RegistrationSpec[];

  private constructor(dir: string, dev: DevServer, control: ControlCerts, registrations: RegistrationSpec[]) {
    this.dir = dir;
    this.root = join(dir, 'root');
    this.dev = dev;
    this.control = control;
    this.registrations = registrations;
  }

  /** What a supervisor started on this stage needs: its directories, this device server, these certificates and registrations. */
  launcherOptions(): Pick<LauncherProcessOptions, 'dir' | 'root' | 'deviceUrl' | 'registrations' | 'control'> {
    return { dir: this.dir, root: this.root, deviceUrl: this.dev.url, registrations: this.registrations, control: this.control };
  }

  static async create(o: StageOptions): Promise<Stage> {
    assertBuilt();
    const dir = mkdtempSync(join(tmpdir(), `${o.prefix}-`));
    const dev = await startDevServer({
      tenants: o.registrations.map((id) => ({
        name: id,
        secrets: [`secret-${id}`],
        ...(o.tenantConfig ? { config: JSON.stringify(o.tenantConfig(id)) } : {}),
      })),
    });
    try {
      const control = await controlCerts(dir);
      const regs = o.registrations.map((id) => ({ id, secret: `secret-${id}`, osqueryFlags: o.osqueryFlags?.(id) ?? [] }));
      return new Stage(dir, dev, control, regs);
    } catch (err) {
      await dev.close();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  get ids(): string[] {
    return this.registrations.map((r) => r.id);
  }

  /** The supervisor's socket directory (the root is short enough for `<root>/s`). */
  get socketDir(): string {
    return join(this.root, 's');
  }

  /** Live osqueryds of this root, per /proc. */
  osqueryds() {
    return osquerydProcesses(this.socketDir);
  }

  /** Registration → current run's extension socket, via the control API (for an InjectionLoop). */
  socketResolver(client: () => ControlClient): () => Promise<Map<string, string | undefined>> {
    return async () => {
      const out = new Map<string, string | undefined>();
      for (const i of await client().listInstances())
        out.set(i.id, i.healthy && i.run_id ? extensionSocket(this.socketDir, i.run_id) : undefined);
      return out;
    };
  }

  /**
   * Close the device server and remove the directory, after making sure no
   * osqueryd of this root is alive (returns the ones that had to be killed).
   * Idempotent.
   */
  cleanup(): Promise<number[]> {
    this.cleaning ??= this.doCleanup();
    return this.cleaning;
  }

  private cleaning: Promise<number[]> | undefined;

  private async doCleanup(): Promise<number[]> {
    let leaked: number[] = [];
    try {
      await waitFor('osqueryds of the stage to exit', () => this.osqueryds().length === 0, { timeoutMs: 5_000, intervalMs: 50 });
    } catch {
      leaked = killAll(this.osqueryds().map((p) => p.pid));
    }
    await this.dev.close();
    rmSync(this.dir, { recursive: true, force: true });
    return leaked;
  }
}
