/**
 * Every check start-up makes before anything starts, in one place (issue
 * 13): `launcher run --check` and `launcher run` both call checkStartup(),
 * and LauncherApp builds its pieces through the same functions (device
 * client options, control settings), so there is no second list to drift.
 * Each check throws a LauncherError naming what is wrong and where.
 *
 *   - osqueryd: found and executable (locate-osqueryd.ts);
 *   - the root directory: a directory we can write, or creatable;
 *   - the device client: URL, TLS root PEM, pins (DeviceClient's constructor);
 *   - the control API, when enabled: certificates configured, readable and
 *     valid, listen address, roles (the server's own loaders);
 *   - every configured registration: its enroll secret file readable (the
 *     extension's reader), its osquery flags known to this osqueryd (its
 *     `--help`), reported with path and line in the config file.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { LauncherConfig } from '../config/schema.js';
import { configProblems, originOf } from '../config/load.js';
import { parseRoles } from '../control/authz.js';
import { defaultListen, parseListen } from '../control/listen.js';
import { loadServerMaterial } from '../control/tls.js';
import { DeviceClient, type DeviceClientOptions } from '../device/index.js';
import { LauncherError, errorMessage } from '../errors.js';
import { readEnrollSecret } from '../../extensions/kolide_grpc/index.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { osquerydFlagCatalog, unknownFlagProblem } from '../runtime/known-flags.js';
import { locateOsqueryd, type LocatedOsqueryd } from './locate-osqueryd.js';
import { updateSettings } from './update-wiring.js';

export interface ControlSettings {
  listen: string;
  ca: string;
  cert: string;
  key: string;
  roles: Record<string, string>;
}

/** The control API's settings, or undefined when disabled; E_CONFIG when enabled without certificates. */
export function controlSettings(config: LauncherConfig): ControlSettings | undefined {
  const c = config.control;
  if (!c.enabled) return undefined;
  if (!c.ca || !c.cert || !c.key) {
    throw new LauncherError(
      'E_CONFIG',
      'control.enabled is true but control.ca, control.cert and control.key are not all set (run `launcher certs init`, or set control.enabled: false)',
    );
  }
  return { listen: c.listen ?? defaultListen(config.root_directory), ca: c.ca, cert: c.cert, key: c.key, roles: c.roles };
}

/** What startControlServer() would refuse, without listening: the address, the TLS material, the roles. */
export function checkControl(settings: ControlSettings): void {
  parseListen(settings.listen);
  loadServerMaterial(settings);
  parseRoles(settings.roles);
}

export function deviceClientOptions(config: LauncherConfig, logger?: Logger): DeviceClientOptions {
  const ds = config.device_server;
  return {
    serverUrl: ds.url,
    insecure: ds.insecure,
    insecureTransport: ds.insecure_transport,
    ...(ds.root_pem ? { rootPemPath: ds.root_pem } : {}),
    certPins: ds.cert_pins,
    concurrency: ds.concurrency,
    timeoutMs: ds.timeout_ms,
    ...(logger ? { logger } : {}),
  };
}

/** The root directory exists as a writable directory, or its nearest existing parent lets us create it. */
export function checkRootDirectory(root: string): void {
  let dir = root;
  for (;;) {
    let st;
    try {
      st = statSync(dir);
    } catch {
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
      continue;
    }
    if (!st.isDirectory()) throw new LauncherError('E_CONFIG', `root_directory ${root}: ${dir} is not a directory`);
    try {
      accessSync(dir, constants.W_OK | constants.X_OK);
    } catch (err) {
      const what = dir === root ? 'is not writable' : `cannot be created: ${dir} is not writable`;
      throw new LauncherError('E_CONFIG', `root_directory ${root} ${what} (${errorMessage(err)})`, { cause: err });
    }
    return;
  }
}

/** Enroll secret files of the configured registrations, read as enrollment reads them. */
export async function checkSecrets(config: LauncherConfig): Promise<void> {
  for (const r of config.registrations) {
    if (r.enroll_secret_path !== undefined) await readEnrollSecret(r.id, undefined, r.enroll_secret_path);
  }
}

/** Osquery flags of the configured registrations against the binary's --help, with path and line. */
export async function checkFlags(config: LauncherConfig, osquerydPath: string, logger: Logger): Promise<void> {
  if (!config.registrations.some((r) => r.osquery_flags.length > 0)) return;
  const catalog = await osquerydFlagCatalog(osquerydPath);
  if (catalog.kind === 'unavailable') {
    logger.warn({ osqueryd: osquerydPath, reason: catalog.reason }, 'cannot check osquery flags against osqueryd --help; accepting them');
    return;
  }
  const problems: Array<{ path: Array<string | number>; message: string }> = [];
  config.registrations.forEach((r, i) => {
    r.osquery_flags.forEach((flag, j) => {
      const message = unknownFlagProblem(catalog, flag);
      if (message) problems.push({ path: ['registrations', i, 'osquery_flags', j], message });
    });
  });
  if (problems.length > 0) throw configProblems(config, problems);
}

/**
 * Run `check`; a LauncherError it throws keeps its code and gains where the value came from (the environment
 * variable that set it, or the file's line), so `LAUNCHER_CONTROL_LISTEN=bogus` is named in the message.
 */
function attributed<T>(config: LauncherConfig, path: readonly string[], check: () => T): T {
  try {
    return check();
  } catch (err) {
    const origin = originOf(config, path);
    if (!(err instanceof LauncherError) || origin === undefined || err.message.startsWith(origin)) throw err;
    throw new LauncherError(err.code, `${origin}: ${err.message}`, { cause: err });
  }
}

/** Run every start-up check; returns the osqueryd to use. Nothing is started or written. */
export async function checkStartup(config: LauncherConfig, options: { logger?: Logger } = {}): Promise<LocatedOsqueryd> {
  const logger = options.logger ?? silentLogger();
  const osqueryd = attributed(config, ['osqueryd_path'], () => locateOsqueryd(config.osqueryd_path));
  attributed(config, ['root_directory'], () => checkRootDirectory(config.root_directory));
  attributed(config, ['device_server', 'url'], () => new DeviceClient(deviceClientOptions(config)).close());
  const control = controlSettings(config);
  if (control) {
    attributed(config, ['control', 'listen'], () => parseListen(control.listen));
    checkControl(control);
  }
  await checkSecrets(config);
  await checkFlags(config, osqueryd.path, logger);
  updateSettings(config); // issue 17: the trusted root of the update section exists
  return osqueryd;
}
