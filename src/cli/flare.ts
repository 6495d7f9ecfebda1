/**
 * `launcher flare [--config FILE] [--output FILE]`: one .tar.gz with what a
 * support engineer needs from this host (src/flare/, ADR 0020).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { errorOutput, wireJson } from './cli-output.js';

const HELP = `
The archive (launcher-flare/ inside) holds:
  manifest.json      mode (live: the running supervisor answered on its control API; offline: files read read-only),
                     why, what is missing, how many secret values were scrubbed
  doctor.json        every \`launcher doctor\` check
  config.json        the configuration with inline enroll secrets replaced (config-error.txt if it does not load)
  ctl/               list, get and history of every registration (live: the control API; offline: the store)
  output/ID.txt      each instance's osqueryd output ring (live only: the ring lives in the supervisor's memory)
  supervisor.log     the last --lines lines of <root>/supervisor.log(.1)
  store.json         SQLite quick_check, file sizes, backups
  versions.json      launcher, Node, osqueryd per instance;   cgroups.json  limits and usage of every osqueryd
  metrics.txt        a metrics snapshot, when this build has a metrics source
It never contains an enroll secret, node key or private key: those are never copied, and every file is scrubbed of
every known secret value (config, secret files, store, key files) and of PEM private-key blocks before it is written.
Live mode needs an admin client certificate: --ctl-config (ctl's JSON), else $LAUNCHER_CTL_CONFIG, else
admin.pem/admin.key beside control.ca (the \`launcher certs init\` layout). Run it as the user that runs the service.
The output is created new with mode 0600; an existing file or symlink at the path is refused (exit 1).
`;

function positive(max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`expected 1..${max}, got ${JSON.stringify(value)}`);
    return n;
  };
}

export function buildFlareCommand(): Command {
  return new Command('flare')
    .description('write one .tar.gz for support: doctor, instances, history, output rings, redacted config, logs, store, versions, cgroups')
    .addOption(
      new Option('-c, --config <file>', 'the supervisor configuration')
        .env('LAUNCHER_CONFIG')
        .default('/etc/osquery-launcher/launcher.yaml'),
    )
    .option('-o, --output <file>', 'archive to create (default ./launcher-flare-<host>-<time>.tar.gz); never overwritten')
    .option('--ctl-config <file>', "ctl's client config with an admin certificate (default: ctl's search, then beside control.ca)")
    .option('--lines <n>', 'supervisor log and output ring lines to keep (default 2000)', positive(1_000_000))
    .option('--timeout-ms <n>', 'bound for each control API call and doctor probe (default 5000)', positive(120_000))
    .option('--json', 'print the result as JSON')
    .addHelpText('after', HELP)
    .action(async (opts: { config: string; output?: string; ctlConfig?: string; lines?: number; timeoutMs?: number; json?: boolean }) => {
      try {
        const { createFlare } = await import('../flare/index.js');
        const { path, manifest } = await createFlare({
          configPath: opts.config,
          jsonStyle: (v) => wireJson(v),
          ...(opts.output ? { output: opts.output } : {}),
          ...(opts.ctlConfig ? { ctlConfig: opts.ctlConfig } : {}),
          ...(opts.lines ? { logLines: opts.lines, outputLines: opts.lines } : {}),
          ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
        });
        if (opts.json)
          process.stdout.write(
            `${JSON.stringify({ path, mode: manifest.mode, mode_reason: manifest.mode_reason, missing: manifest.missing })}\n`,
          );
        else
          process.stdout.write(
            `wrote ${path} (${manifest.mode}: ${manifest.mode_reason})${manifest.missing.length ? `\nmissing:\n  ${manifest.missing.join('\n  ')}` : ''}\n`,
          );
      } catch (err) {
        process.stderr.write(errorOutput('launcher flare', err, opts.json === true));
        process.exitCode = 1;
      }
    });
}
