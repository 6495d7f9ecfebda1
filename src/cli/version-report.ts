/**
 * `launcher version` and `launcher --version`: what this build is (version,
 * commit, build date, Node) and which osqueryd it would run, found the way
 * `osqueryd_path: auto` finds it ($LAUNCHER_OSQUERYD_PATH first), with that
 * binary's own `--version`.
 */
import { execFileSync } from 'node:child_process';
import { locateOsqueryd, osquerydSearchList, STAND_IN_RULE } from '../app/locate-osqueryd.js';
import { errorMessage, isLauncherError } from '../errors.js';
import { API_VERSION } from '../control/features.js';
import { buildInfo, launcherVersion } from '../version.js';

export interface VersionReport {
  version: string;
  commit: string;
  commit_date: string;
  build_date: string;
  node_version: string;
  control_api_version: string;
  osqueryd_path: string | null;
  osqueryd_version: string | null;
  /** Why osqueryd_path is null, or why its version is. */
  osqueryd_problem: string | null;
  /** Where `osqueryd_path: auto` looks, in order. */
  osqueryd_search_list: string[];
}

/** `osqueryd version 5.12.1` → `5.12.1`; bounded to 5 s. */
function osquerydVersion(path: string): string {
  const out = execFileSync(path, ['--version'], {
    encoding: 'utf8',
    timeout: 5_000,
    killSignal: 'SIGKILL',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const m = /version\s+(\S+)/.exec(out);
  return m ? m[1]! : out.trim().split('\n')[0]!.slice(0, 100);
}

export function versionReport(env: NodeJS.ProcessEnv = process.env): VersionReport {
  const build = buildInfo();
  const report: VersionReport = {
    version: launcherVersion(),
    ...build,
    node_version: process.version,
    control_api_version: API_VERSION,
    osqueryd_path: null,
    osqueryd_version: null,
    osqueryd_problem: null,
    osqueryd_search_list: osquerydSearchList(env),
  };
  try {
    report.osqueryd_path = locateOsqueryd(env.LAUNCHER_OSQUERYD_PATH || 'auto', { env }).path;
  } catch (err) {
    report.osqueryd_problem =
      isLauncherError(err, 'E_OSQUERYD_NOT_FOUND') && !env.LAUNCHER_OSQUERYD_PATH
        ? 'not found in the search list'
        : errorMessage(err).split('\n')[0]!;
    return report;
  }
  try {
    report.osqueryd_version = osquerydVersion(report.osqueryd_path);
  } catch (err) {
    report.osqueryd_problem = `${report.osqueryd_path} --version failed: ${errorMessage(err).split('\n')[0]}`;
  }
  return report;
}

export function versionText(r: VersionReport): string {
  const osqueryd =
    r.osqueryd_path === null ? `none (${r.osqueryd_problem})` : `${r.osqueryd_path} (${r.osqueryd_version ?? r.osqueryd_problem})`;
  return `${[
    `osquery-launcher ${r.version}`,
    `  commit       ${r.commit} (${r.commit_date})`,
    `  built        ${r.build_date}`,
    `  node         ${r.node_version}`,
    `  control API  ${r.control_api_version}`,
    `  osqueryd     ${osqueryd}`,
    `  searched     ${r.osqueryd_search_list.join('\n               ')}`,
    ...(r.osqueryd_path === null ? [`  ${STAND_IN_RULE}`] : []),
  ].join('\n')}\n`;
}
