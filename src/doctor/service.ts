/**
 * Check: the systemd service. When systemd is PID 1 (sd_booted(3): the
 * directory /run/systemd/system exists), the package's unit must be
 * installed (loaded), enabled and active; `systemctl show` reports all three.
 * Anywhere else (containers, hosts with another init, development runs) the
 * check passes with a note that it was skipped, and why.
 */
import { runProgram } from './program.js';
import { existsSync } from 'node:fs';
import { errorMessage } from '../errors.js';
import { Findings, type CheckResult, type DoctorContext } from './types.js';

export const SERVICE_UNIT = 'osquery-launcher.service';

/** The properties `systemctl show` prints as KEY=VALUE lines. */
export interface UnitState {
  LoadState?: string;
  UnitFileState?: string;
  ActiveState?: string;
  SubState?: string;
  FragmentPath?: string;
}

export function parseSystemctlShow(text: string): UnitState {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1).trim();
  }
  return out;
}

/** Findings for a unit's state (pure: the systemctl call is separate). */
export function judgeUnit(f: Findings, unit: string, s: UnitState): Findings {
  if (s.LoadState !== 'loaded') {
    return f.fail(`${unit} is not installed (LoadState=${s.LoadState ?? '?'}): install the osquery-launcher package or its unit file`);
  }
  f.pass(`${unit} is installed (${s.FragmentPath || 'no fragment path'})`);
  if (s.UnitFileState === 'enabled' || s.UnitFileState === 'enabled-runtime') f.pass(`${unit} is enabled`);
  else f.warn(`${unit} is ${s.UnitFileState || 'not enabled'}: it will not start at boot (systemctl enable ${unit})`);
  if (s.ActiveState === 'active') f.pass(`${unit} is active (${s.SubState ?? '?'})`);
  else if (s.ActiveState === 'failed') f.fail(`${unit} has failed: see systemctl status ${unit} and journalctl -u ${unit}`);
  else f.warn(`${unit} is ${s.ActiveState ?? '?'} (${s.SubState ?? '?'}): systemctl start ${unit}`);
  return f;
}

async function systemctlShow(unit: string, timeoutMs: number): Promise<string> {
  const out = await runProgram(
    'systemctl',
    ['show', unit, '--property=LoadState,UnitFileState,ActiveState,SubState,FragmentPath'],
    timeoutMs,
  );
  if (out.error !== undefined || out.code !== 0)
    throw new Error(`systemctl show ${unit}: ${out.stderr.trim() || out.error || `exit ${out.code ?? out.signal}`}`);
  return out.stdout;
}

export async function checkService(ctx: DoctorContext): Promise<CheckResult> {
  const f = new Findings('service');
  const marker = ctx.systemdRunDir ?? '/run/systemd/system';
  if (!existsSync(marker)) return f.pass(`skipped: systemd is not PID 1 here (${marker} does not exist)`).result();
  try {
    return judgeUnit(f, SERVICE_UNIT, parseSystemctlShow(await systemctlShow(SERVICE_UNIT, ctx.timeoutMs))).result();
  } catch (err) {
    return f.fail(errorMessage(err)).result();
  }
}
