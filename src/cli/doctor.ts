/**
 * `launcher doctor [--config FILE] [--json] [--timeout-ms N]`: check a host
 * before or after installing the launcher (src/doctor/). Prints a table (or
 * JSON) with pass / warn / fail per check; exits 1 when any check fails.
 */
import { Command, InvalidArgumentError } from 'commander';
import { errorOutput } from './cli-output.js';
import { formatReport, runDoctor, type DoctorOptions } from '../doctor/run.js';

export interface DoctorIo {
  stdout(text: string): void;
  stderr(text: string): void;
  exit(code: number): void;
  /** Extra options for runDoctor (tests). */
  doctor?: Omit<DoctorOptions, 'configPath' | 'timeoutMs'>;
}

function timeout(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 100 || n > 120_000)
    throw new InvalidArgumentError(`expected 100..120000 ms, got ${JSON.stringify(value)}`);
  return n;
}

export function buildDoctorCommand(overrides: Partial<DoctorIo> = {}): Command {
  const io: DoctorIo = {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    exit: (code) => {
      process.exitCode = code;
    },
    ...overrides,
  };
  return new Command('doctor')
    .description(
      'check this host for the launcher: osqueryd, root directory and database modes, socket paths, cgroups, device server TLS, control certificates, config, systemd service',
    )
    .option(
      '-c, --config <file>',
      'configuration to check (default: $LAUNCHER_CONFIG, else /etc/osquery-launcher/launcher.yaml if present)',
    )
    .option('--json', 'print the report as JSON')
    .option('--timeout-ms <n>', 'bound for each network probe and program run (default 5000)', timeout)
    .addHelpText('after', '\nExit status: 0 when no check fails (warnings allowed), 1 when any check fails.\n')
    .configureOutput({ writeOut: (t) => io.stdout(t), writeErr: (t) => io.stderr(t) })
    .action(async (opts: { config?: string; json?: boolean; timeoutMs?: number }) => {
      try {
        const report = await runDoctor({
          ...io.doctor,
          ...(opts.config ? { configPath: opts.config } : {}),
          ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
        });
        io.stdout(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
        io.exit(report.ok ? 0 : 1);
      } catch (err) {
        io.stderr(errorOutput('launcher doctor', err, opts.json === true));
        io.exit(1);
      }
    });
}
