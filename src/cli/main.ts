/** `launcher`: the supervisor and its tools. */
import { Command } from 'commander';
import { launcherVersion } from '../version.js';
import { buildRunCommand } from './run.js';
import { buildCtlCommand } from './ctl.js';
import { buildCertsCommand } from './certs.js';
import { buildDoctorCommand } from './doctor.js';
import { createRootLogger } from '../log/logger.js';
import { errorMessage } from '../errors.js';

const program = new Command('launcher')
  .description('osquery-launcher: keeps one osqueryd per registration (vendor + tenants) alive, each with its own kolide_grpc extension')
  .version(`osquery-launcher ${launcherVersion()}`, '-V, --version')
  .showHelpAfterError()
  .addCommand(buildRunCommand())
  .addCommand(
    new Command('demo')
      .description('run the whole product locally on embedded defaults (what `npm start` runs); state in ./.launcher-demo or $LAUNCHER_ROOT')
      .option('--root <dir>', 'state directory (default ./.launcher-demo)')
      .action(async (opts: { root?: string }) => {
        const { runDemo } = await import('../app/demo.js');
        const logger = createRootLogger({ level: (process.env.LAUNCHER_LOG_LEVEL as 'info' | undefined) ?? 'info' });
        try {
          await runDemo({ logger, ...(opts.root ? { root: opts.root } : {}) });
        } catch (err) {
          process.stderr.write(`launcher demo: ${errorMessage(err)}\n`);
          process.exitCode = 1;
        }
      }),
  )
  .addCommand(
    new Command('dev-server')
      .description('run the local device server (Kolide JSON-RPC protocol) on 127.0.0.1')
      .allowUnknownOption()
      .helpOption(false)
      .argument('[args...]', 'see: launcher dev-server --help')
      .action(async () => {
        // The dev server has its own flag parsing (src/devserver/main.ts).
        const idx = process.argv.indexOf('dev-server');
        process.argv = [process.argv[0]!, process.argv[1]!, ...process.argv.slice(idx + 1)];
        await import('../devserver/main.js');
      }),
  )
  .addCommand(buildCtlCommand())
  .addCommand(buildCertsCommand())
  .addCommand(buildDoctorCommand());

await program.parseAsync(process.argv);
