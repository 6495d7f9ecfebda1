/** Check: osqueryd can be found the way `launcher run` finds it, and answers `--version`. */
import { locateOsqueryd } from '../app/locate-osqueryd.js';
import { errorMessage } from '../errors.js';
import { runProgram } from './program.js';
import type { CheckResult, DoctorContext } from './types.js';

/** `osqueryd version 5.12.1` → `5.12.1`. */
export function parseOsquerydVersion(output: string): string | undefined {
  return /\bversion\s+(\d+\.\d+\.\d+[\w.+-]*)/.exec(output)?.[1];
}

export async function checkOsqueryd(ctx: DoctorContext): Promise<CheckResult> {
  const name = 'osqueryd';
  const configured = ctx.config?.osqueryd_path ?? 'auto';
  let located;
  try {
    located = locateOsqueryd(configured, { env: ctx.env });
  } catch (err) {
    return { name, status: 'fail', detail: errorMessage(err) };
  }
  const out = await runProgram(located.path, ['--version'], ctx.timeoutMs, ctx.env);
  const where = `${located.path} (${located.source === 'configured' ? 'osqueryd_path' : located.source === 'path' ? 'found on PATH' : 'usual install path'})`;
  if (out.error || out.code !== 0) {
    const why = out.error ?? (out.signal ? `killed by ${out.signal}` : `exit code ${out.code}`);
    const said = (out.stderr || out.stdout).trim().split('\n')[0];
    return { name, status: 'fail', detail: `${where}: \`${located.path} --version\` failed: ${why}${said ? ` (${said})` : ''}` };
  }
  const version = parseOsquerydVersion(out.stdout) ?? parseOsquerydVersion(out.stderr);
  if (!version) {
    return {
      name,
      status: 'warn',
      detail: `${where}: \`--version\` printed no version: ${JSON.stringify(out.stdout.trim().slice(0, 200))}`,
    };
  }
  return { name, status: 'pass', detail: `${where}: osqueryd version ${version}` };
}
