import { Command, Option } from 'commander';
import { loadConfigFile } from '../config/load.js';
import { join } from 'node:path';
import { createRootLogger } from '../log/logger.js';
import { BoundedLogFile, SUPERVISOR_LOG_FILE } from '../log/log-file.js';
import { checkStartup } from '../app/startup-checks.js';
import { LauncherApp } from '../app/launcher-app.js';
import { errorMessage, isLauncherError } from '../errors.js';
import { sdReady, sdStopping } from './sd-notify.js';
import { osquerydSearchList, STAND_IN_RULE } from '../app/locate-osqueryd.js';

/** `run --help`: where `osqueryd_path: auto` looks on this host, and the stand-in's rule. */
function osquerydHelp(): string {
  return `\nosqueryd_path: auto searches, in order ($PATH, then this platform's install paths):\n  ${osquerydSearchList().join('\n  ')}\n${STAND_IN_RULE}\n`;
}

export function buildRunCommand(): Command {
  return new Command('run')
    .description('run the supervisor: one osqueryd per registration, the control API, log shipping')
    .addOption(
      new Option('-c, --config <file>', 'YAML configuration (see config/launcher.example.yaml)')
        .env('LAUNCHER_CONFIG')
        .makeOptionMandatory(),
    )
    .addHelpText('after', osquerydHelp)
    .option(
      '--check',
      'run every start-up check (configuration, osqueryd and its flags, certificates, secret files, root directory), then exit',
    )
    .action(async (opts: { config: string; check?: boolean }) => {
      try {
        const config = loadConfigFile(opts.config);
        // Every line also goes to <root>/supervisor.log (bounded, 0600), so a flare finds them up or down.
        const logFile = opts.check ? undefined : new BoundedLogFile(join(config.root_directory, SUPERVISOR_LOG_FILE));
        const logger = createRootLogger({ level: config.log_level, ...(logFile ? { file: logFile } : {}) });
        // The same checks, through the same code, whether we then start or only report (issue 13).
        const osqueryd = await checkStartup(config, { logger });
        if (opts.check) {
          process.stdout.write(`configuration ${opts.config} is valid; osqueryd: ${osqueryd.path}\n`);
          return;
        }
        logger.info({ osqueryd: osqueryd.path, source: osqueryd.source, root: config.root_directory }, 'starting launcher');
        const app = new LauncherApp({
          config,
          osquerydPath: osqueryd.path,
          logger,
          configPath: opts.config,
          // The doctor's checks, loaded only when the first round runs (issue 14: `run` stays small at start).
          checkups: async () => (await import('../doctor/run.js')).runDoctor({ configPath: opts.config }).then((r) => r.checks),
        });
        // systemd (Type=notify): ready once the runner runs and the control API listens. Not "every instance
        // healthy": one tenant's crash-looping osqueryd must not fail the whole service start.
        void app
          .whenReady()
          .then(() =>
            sdReady(`${config.registrations.length} configured registration(s); control API ${app.controlAddress ?? 'disabled'}`),
          );
        process.once('SIGTERM', () => void sdStopping('stopping osqueryd instances'));
        await app.run();
      } catch (err) {
        process.stderr.write(`launcher run: ${errorMessage(err)}\n`);
        process.exitCode =
          isLauncherError(err, 'E_CONFIG') || isLauncherError(err, 'E_OSQUERYD_NOT_FOUND') || isLauncherError(err, 'E_TLS') ? 2 : 1;
      }
    });
}
