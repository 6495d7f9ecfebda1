import { Command, Option } from 'commander';
import { loadConfigFile } from '../config/load.js';
import { createRootLogger } from '../log/logger.js';
import { locateOsqueryd } from '../app/locate-osqueryd.js';
import { LauncherApp } from '../app/launcher-app.js';
import { errorMessage, isLauncherError } from '../errors.js';

export function buildRunCommand(): Command {
  return new Command('run')
    .description('run the supervisor: one osqueryd per registration, the control API, log shipping')
    .addOption(new Option('-c, --config <file>', 'YAML configuration (see config/launcher.example.yaml)').env('LAUNCHER_CONFIG').makeOptionMandatory())
    .option('--check', 'validate the configuration and find osqueryd, then exit')
    .action(async (opts: { config: string; check?: boolean }) => {
      try {
        const config = loadConfigFile(opts.config);
        const osqueryd = locateOsqueryd(config.osqueryd_path);
        if (opts.check) {
          process.stdout.write(`configuration ${opts.config} is valid; osqueryd: ${osqueryd.path}\n`);
          return;
        }
        const logger = createRootLogger({ level: config.log_level });
        logger.info({ osqueryd: osqueryd.path, source: osqueryd.source, root: config.root_directory }, 'starting launcher');
        const app = new LauncherApp({ config, osquerydPath: osqueryd.path, logger });
        await app.run();
      } catch (err) {
        process.stderr.write(`launcher run: ${errorMessage(err)}\n`);
        process.exitCode = isLauncherError(err, 'E_CONFIG') || isLauncherError(err, 'E_OSQUERYD_NOT_FOUND') ? 2 : 1;
      }
    });
}
