/**
 * `launcher`: the supervisor and its tools. Only the subcommand named on the
 * command line is loaded (issue 14: `launcher run` must not carry the control
 * CLI, certificate tooling or doctor in memory); `launcher --help`, `help`
 * and anything unrecognised load them all.
 */
import { Command } from 'commander';
import { launcherVersion } from '../version.js';
import { createRootLogger } from '../log/logger.js';
import { errorMessage } from '../errors.js';

type Builder = () => Promise<Command>;

const SUBCOMMANDS: Record<string, Builder> = {
  run: async () => (await import('./run.js')).buildRunCommand(),
  demo: async () =>
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
  'dev-server': async () =>
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
  ctl: async () => (await import('./ctl.js')).buildCtlCommand(),
  certs: async () => (await import('./certs.js')).buildCertsCommand(),
  doctor: async () => (await import('./doctor.js')).buildDoctorCommand(),
};

/** The subcommand named first on the command line (options before it skipped), if it is one of ours. */
function namedSubcommand(argv: readonly string[]): string | undefined {
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  return first !== undefined && Object.hasOwn(SUBCOMMANDS, first) ? first : undefined;
}

const program = new Command('launcher')
  .description('osquery-launcher: keeps one osqueryd per registration (vendor + tenants) alive, each with its own kolide_grpc extension')
  .version(`osquery-launcher ${launcherVersion()}`, '-V, --version')
  .showHelpAfterError();
const named = namedSubcommand(process.argv);
for (const name of named ? [named] : Object.keys(SUBCOMMANDS)) program.addCommand(await SUBCOMMANDS[name]!());

await program.parseAsync(process.argv);
