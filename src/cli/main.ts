/**
 * `launcher`: the supervisor and its tools. Only the subcommand named on the
 * command line is loaded (issue 14: `launcher run` must not carry the control
 * CLI, certificate tooling or doctor in memory); `launcher --help`, `help`
 * and anything unrecognised load them all.
 */
import { Command, CommanderError } from 'commander';
import { envLogLevel, LogLevelError } from '../log/logger.js';
import { errorMessage } from '../errors.js';
import { argvWantsJson, errorOutput, USAGE_EXIT } from './cli-output.js';

const EXIT_HELP = `
Exit status: 0 on success (also --help and --version), 2 on a usage or configuration error (unknown option or
command, missing or bad argument, bad environment value, an invalid config, no osqueryd found, unusable TLS
material), 1 on other errors; \`launcher ctl --help\` lists ctl's own codes.
With --json, output is JSON with snake_case keys and ISO-8601 times, and errors are {"error":{"code","message"}} on stderr.
`;

type Builder = () => Promise<Command>;

const SUBCOMMANDS: Record<string, Builder> = {
  run: async () => (await import('./run.js')).buildRunCommand(),
  demo: async () =>
    new Command('demo')
      .description(
        'run the whole product locally on embedded defaults (what `npm start` runs); state in ./.launcher-demo or $LAUNCHER_ROOT',
      )
      .option('--root <dir>', 'state directory (default ./.launcher-demo)')
      .action(async (opts: { root?: string }) => {
        const { runDemo } = await import('../app/demo.js');
        const level = envLogLevel();
        try {
          await runDemo({ level, ...(opts.root ? { root: opts.root } : {}) });
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
  version: async () =>
    new Command('version')
      .description('version, commit, build date, Node version, control API version and the osqueryd found')
      .option('--json', 'print JSON for scripts')
      .action(async (opts: { json?: boolean }) => {
        const { versionReport, versionText } = await import('./version-report.js');
        const report = versionReport();
        process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : versionText(report));
      }),
  ctl: async () => (await import('./ctl.js')).buildCtlCommand(),
  certs: async () => (await import('./certs.js')).buildCertsCommand(),
  doctor: async () => (await import('./doctor.js')).buildDoctorCommand(),
  flare: async () => (await import('./flare.js')).buildFlareCommand(),
};

/** The subcommand named first on the command line (options before it skipped), if it is one of ours. */
function namedSubcommand(argv: readonly string[]): string | undefined {
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  return first !== undefined && Object.hasOwn(SUBCOMMANDS, first) ? first : undefined;
}

/** Every command and subcommand: throw instead of exiting, and under --json print usage errors as JSON. */
function configureAll(cmd: Command, json: boolean): void {
  cmd.exitOverride();
  cmd.configureOutput({
    outputError: (text, write) =>
      write(json ? errorOutput('launcher', new Error(text.replace(/^error: /, '').trim()), true, 'E_USAGE') : text),
  });
  if (!json) cmd.showHelpAfterError();
  for (const sub of cmd.commands) configureAll(sub, json);
}

const json = argvWantsJson(process.argv);
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { versionReport, versionText } = await import('./version-report.js');
  process.stdout.write(versionText(versionReport()));
} else {
  const program = new Command('launcher')
    .description('osquery-launcher: keeps one osqueryd per registration (vendor + tenants) alive, each with its own kolide_grpc extension')
    .option('-V, --version', 'print version, commit, build date, Node version and the osqueryd found (same as `launcher version`)')
    .addHelpText('after', EXIT_HELP);
  const named = namedSubcommand(process.argv);
  for (const name of named ? [named] : Object.keys(SUBCOMMANDS)) program.addCommand(await SUBCOMMANDS[name]!());
  configureAll(program, json);
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; every usage error (unknown option, missing argument, bad value) exits 2.
      process.exitCode = err.exitCode === 0 ? 0 : USAGE_EXIT;
    } else {
      process.stderr.write(errorOutput('launcher', err, json));
      process.exitCode = err instanceof LogLevelError ? USAGE_EXIT : 1;
    }
  }
}
