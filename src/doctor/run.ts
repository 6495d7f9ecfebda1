/** Run every doctor check (concurrently; results in a fixed order) and summarise. */
import { tmpdir } from 'node:os';
import { errorMessage } from '../errors.js';
import { checkCgroups } from './cgroups.js';
import { checkConfig, loadDoctorConfig, DEFAULT_CONFIG_PATH } from './config.js';
import { checkControlCertificates } from './control-certs.js';
import { checkDeviceServer } from './device-server.js';
import { checkIsolation } from './isolation.js';
import { checkOsqueryd } from './osqueryd.js';
import { checkRootDirectory } from './root-directory.js';
import { checkService } from './service.js';
import { checkSocketPaths } from './socket-paths.js';
import type { Check, CheckResult, DoctorContext } from './types.js';

export const CHECKS: readonly { name: string; run: Check }[] = [
  { name: 'config', run: checkConfig },
  { name: 'osqueryd', run: checkOsqueryd },
  { name: 'root directory', run: checkRootDirectory },
  { name: 'socket paths', run: checkSocketPaths },
  { name: 'cgroups', run: checkCgroups },
  { name: 'isolation', run: (ctx) => checkIsolation(ctx) },
  { name: 'device server', run: checkDeviceServer },
  { name: 'control certificates', run: checkControlCertificates },
  { name: 'service', run: checkService },
];

export interface DoctorOptions {
  /** Configuration file; default $LAUNCHER_CONFIG, else the packaged default if present. */
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  now?: Date;
  cgroupRoot?: string;
  tmpdir?: string;
  systemdRunDir?: string;
  /** Where to look when no path is given (tests). */
  defaultConfigPath?: string;
}

export interface DoctorReport {
  /** No check failed (warnings allowed). */
  ok: boolean;
  config?: string;
  checks: CheckResult[];
}

export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const env = options.env ?? process.env;
  const loaded = loadDoctorConfig(options.configPath, env, options.defaultConfigPath ?? DEFAULT_CONFIG_PATH);
  const ctx: DoctorContext = {
    ...loaded,
    env,
    timeoutMs: options.timeoutMs ?? 5_000,
    now: options.now ?? new Date(),
    cgroupRoot: options.cgroupRoot ?? '/sys/fs/cgroup',
    tmpdir: options.tmpdir ?? tmpdir(),
    ...(options.systemdRunDir ? { systemdRunDir: options.systemdRunDir } : {}),
  };
  const checks = await Promise.all(
    CHECKS.map(async ({ name, run }): Promise<CheckResult> => {
      try {
        return await run(ctx);
      } catch (err) {
        return { name, status: 'fail', detail: `the check itself failed: ${errorMessage(err)}` };
      }
    }),
  );
  return { ok: checks.every((c) => c.status !== 'fail'), ...(loaded.configPath ? { config: loaded.configPath } : {}), checks };
}

/** The report as an aligned table; multi-line details are indented under their check. */
export function formatReport(report: DoctorReport): string {
  const nameWidth = Math.max('CHECK'.length, ...report.checks.map((c) => c.name.length));
  const pad = (s: string, n: number) => s.padEnd(n);
  const indent = ' '.repeat(nameWidth + 2 + 6 + 2);
  const lines = [`${pad('CHECK', nameWidth)}  ${pad('STATUS', 6)}  DETAIL`];
  for (const c of report.checks) {
    const [first = '', ...rest] = c.detail.split('\n');
    lines.push(`${pad(c.name, nameWidth)}  ${pad(c.status.toUpperCase(), 6)}  ${first}`);
    for (const line of rest) lines.push(`${indent}${line}`);
  }
  const count = (s: string) => report.checks.filter((c) => c.status === s).length;
  lines.push('', `${report.ok ? 'OK' : 'FAILED'}: ${count('pass')} pass, ${count('warn')} warn, ${count('fail')} fail`);
  return `${lines.join('\n')}\n`;
}
