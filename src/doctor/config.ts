/** Check: the configuration file exists and is valid (the same loader `launcher run` uses). */
import { existsSync } from 'node:fs';
import { loadConfigFile } from '../config/load.js';
import { errorMessage } from '../errors.js';
import type { LauncherConfig } from '../config/schema.js';
import type { CheckResult, DoctorContext } from './types.js';

/** Where the Debian package installs the configuration. */
export const DEFAULT_CONFIG_PATH = '/etc/osquery-launcher/launcher.yaml';

export interface LoadedConfig {
  configPath?: string;
  config?: LauncherConfig;
  configProblem?: string;
  configExplicit: boolean;
}

/**
 * The configuration to check: the given path, else $LAUNCHER_CONFIG (as
 * `launcher run`), else the packaged default if it exists. Environment
 * overrides apply as they do for `launcher run`.
 */
export function loadDoctorConfig(path: string | undefined, env: NodeJS.ProcessEnv, defaultPath = DEFAULT_CONFIG_PATH): LoadedConfig {
  const given = path ?? (env.LAUNCHER_CONFIG || undefined);
  const configPath = given ?? (existsSync(defaultPath) ? defaultPath : undefined);
  if (configPath === undefined) {
    return { configExplicit: false, configProblem: `no configuration file given (--config) and ${defaultPath} does not exist` };
  }
  try {
    return { configPath, configExplicit: given !== undefined, config: loadConfigFile(configPath, env) };
  } catch (err) {
    return { configPath, configExplicit: given !== undefined, configProblem: errorMessage(err) };
  }
}

export async function checkConfig(ctx: DoctorContext): Promise<CheckResult> {
  const name = 'config';
  if (ctx.config) {
    const n = ctx.config.registrations.length;
    return { name, status: 'pass', detail: `${ctx.configPath}: valid (${n} registration${n === 1 ? '' : 's'} in the file)` };
  }
  if (ctx.configPath === undefined) {
    // Before installing there is nothing to validate yet: say so, check the defaults.
    return { name, status: 'warn', detail: `${ctx.configProblem ?? 'no configuration'}; the other checks use the defaults` };
  }
  return { name, status: 'fail', detail: ctx.configProblem ?? `${ctx.configPath}: invalid` };
}
