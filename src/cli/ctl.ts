/**
 * `launcher ctl …`: the control API from the command line.
 *
 * Every command loads the client config, checks the client certificate
 * locally (clear message when expired), calls GetVersion first and refuses
 * politely when the server lacks a feature, then prints a table (or JSON with
 * --json). Errors print one line on stderr and set a documented exit code
 * (ctl-exit.ts).
 */
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ControlClient } from '../control/client.js';
import { clientCertificateProblem, resolveClientConfig } from '../control/client-config.js';
import { API_VERSION, FEATURES } from '../control/features.js';
import type { ServerVersionView } from '../control/mapping.js';
import { ControlCallError } from '../control/call-error.js';
import type { AddRegistrationInput } from '../control/target.js';
import { EXIT, EXIT_CODES_HELP, exitCodeOf } from './ctl-exit.js';
import * as fmt from './ctl-format.js';
import { quarantineLine, quarantineTable, releasedText } from './ctl-quarantine.js';
import { colorEnabled } from '../log/color.js';
import { errorOutput, wireJson } from './cli-output.js';
import { addUpdateCommands, updateLinesFor } from './ctl-update.js';

export interface CtlIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Default: sets process.exitCode. */
  exit(code: number): void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Throw CommanderError on usage errors instead of exiting the process (tests, embedding). */
  exitOverride?: boolean;
}

interface GlobalOptions {
  config?: string;
  target?: string;
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
  json?: boolean;
}

interface Context {
  client: ControlClient;
  version: ServerVersionView;
  json: boolean;
  io: CtlIo;
}

function defaultIo(): CtlIo {
  return {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    exit: (code) => {
      process.exitCode = code;
    },
    env: process.env,
    cwd: process.cwd(),
  };
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** API objects in the CLI's JSON style (cli-output.ts): snake_case keys, ISO times. */
const printJson = (io: CtlIo, value: unknown): void => io.stdout(`${JSON.stringify(wireJson(value), null, 2)}\n`);
/** Query rows as osqueryd returned them: column names are data, never renamed. */
const printRows = (io: CtlIo, rows: unknown): void => io.stdout(`${JSON.stringify(rows, null, 2)}\n`);

const requireFeature = (ctx: Context, feature: string, what: string): Promise<void> => ctx.client.requireFeature(feature, what);

export function buildCtlCommand(overrides: Partial<CtlIo> = {}): Command {
  const io: CtlIo = { ...defaultIo(), ...overrides };
  const ctl = new Command('ctl')
    .description('talk to a running launcher over its control API (gRPC, mutual TLS)')
    .option(
      '--config <file>',
      'client config JSON {target, ca, cert, key} (default: $LAUNCHER_CTL_CONFIG, ./.launcher-demo/ctl.json, $LAUNCHER_ROOT/ctl.json)',
    )
    .option('--target <target>', 'unix:///path/control.sock or host:port')
    .option('--ca <file>', 'CA certificate (PEM) the server certificate must chain to')
    .option('--cert <file>', 'client certificate (PEM)')
    .option('--key <file>', 'client private key (PEM)')
    .option('--server-name <name>', 'name to verify the server certificate against')
    .option('--json', 'print JSON for scripts')
    .addHelpText('after', EXIT_CODES_HELP);
  ctl.configureOutput({ writeOut: (t) => io.stdout(t), writeErr: (t) => io.stderr(t) });
  if (io.exitOverride) ctl.exitOverride();

  /** Wrap a command body: connect, GetVersion, run, map errors to exit codes, close. */
  // biome-ignore lint/suspicious/noConfusingVoidType: bodies either resolve nothing or an exit code
  function action<A extends unknown[]>(body: (ctx: Context, ...args: A) => Promise<number | void>) {
    return async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      const g = cmd.optsWithGlobals<GlobalOptions>();
      let client: ControlClient | undefined;
      try {
        const config = resolveClientConfig(
          { config: g.config, target: g.target, ca: g.ca, cert: g.cert, key: g.key, serverName: g.serverName },
          io.env,
          io.cwd,
        );
        const problem = clientCertificateProblem(config.cert);
        if (problem) throw new ControlCallError('tls', problem);
        client = new ControlClient(config);
        const version = await client.version();
        const code = await body({ client, version, json: g.json === true, io }, ...(args.slice(0, -1) as A));
        io.exit(code ?? EXIT.ok);
      } catch (err) {
        io.stderr(errorOutput('launcher ctl', err, g.json === true));
        io.exit(exitCodeOf(err));
      } finally {
        client?.close();
      }
    };
  }

  ctl
    .command('version')
    .description('server version, API version, features and who you are')
    .action(
      action(async (ctx) => {
        if (ctx.json) printJson(io, { ...ctx.version, clientApiVersion: API_VERSION });
        else io.stdout(fmt.versionText(ctx.version, API_VERSION));
      }),
    );

  ctl
    .command('health')
    .description(`overall and per-instance health (exit ${EXIT.unhealthy} when unhealthy)`)
    .action(
      action(async (ctx) => {
        await requireFeature(ctx, FEATURES.health, 'health checks');
        const health = await ctx.client.health();
        if (ctx.json) printJson(io, health);
        else io.stdout(fmt.healthText(health));
        return health.healthy ? EXIT.ok : EXIT.unhealthy;
      }),
    );

  ctl
    .command('list')
    .description('instances you may see')
    .action(
      action(async (ctx) => {
        await requireFeature(ctx, FEATURES.instances, 'listing instances');
        const instances = await ctx.client.listInstances();
        if (ctx.json) printJson(io, instances);
        else io.stdout(fmt.instanceTable(instances));
      }),
    );

  ctl
    .command('get <id>')
    .description('details of one instance')
    .action(
      action(async (ctx, id: string) => {
        await requireFeature(ctx, FEATURES.instances, 'instance details');
        const info = await ctx.client.getInstance(id);
        const update = await updateLinesFor(ctx.client, id).catch(() => undefined); // issue 17: version and pending update
        if (ctx.json) printJson(io, update ? { ...info, update: update.json } : info);
        else {
          const details = fmt.instanceDetails(info);
          // issue 16: one more line when the server has the quarantine (older servers: the details alone).
          const quarantined = ctx.version.features.includes(FEATURES.quarantine) ? await ctx.client.listQuarantine(id) : undefined;
          const keyWidth = (details.split('\n')[0] ?? '').length - info.id.length - 2;
          const line = quarantined ? `${'quarantine'.padEnd(keyWidth)}  ${quarantineLine(quarantined)}\n` : '';
          io.stdout(details + line + (update?.text ?? ''));
        }
      }),
    );

  ctl
    .command('enroll <id>')
    .description('add a registration (admin only) and start its osqueryd')
    .option('--secret <secret>', 'enroll secret (visible in the process list; prefer --secret-file)')
    .option('--secret-file <file>', 'file with the enroll secret, read by the launcher')
    .option('--memory-mb <n>', 'memory limit in MB', positiveInt)
    .option('--cpu-percent <n>', 'CPU limit in percent', positiveInt)
    .option('--osquery-flag <flag>', 'extra osqueryd flag, e.g. --osquery-flag=--verbose (repeatable)', collect, [] as string[])
    .option('--replace', 're-enroll an existing registration with these settings (e.g. a fixed secret); only its osqueryd restarts')
    .action(
      action(
        async (
          ctx,
          id: string,
          opts: { secret?: string; secretFile?: string; memoryMb?: number; cpuPercent?: number; osqueryFlag: string[]; replace?: boolean },
        ) => {
          await requireFeature(ctx, FEATURES.registrations, 'adding registrations');
          if (opts.replace) await requireFeature(ctx, 're-enroll', 're-enrolling (--replace)');
          if ((opts.secret === undefined) === (opts.secretFile === undefined)) {
            io.stderr(
              errorOutput('launcher ctl', new Error('enroll needs exactly one of --secret and --secret-file'), ctx.json, 'E_USAGE'),
            );
            return EXIT.usage;
          }
          const input: AddRegistrationInput = { id, osqueryFlags: opts.osqueryFlag, ...(opts.replace ? { replace: true } : {}) };
          if (opts.secret !== undefined) input.enrollSecret = opts.secret;
          if (opts.secretFile !== undefined) input.enrollSecretPath = resolve(io.cwd, opts.secretFile);
          if (opts.memoryMb !== undefined || opts.cpuPercent !== undefined) {
            input.limits = {};
            if (opts.memoryMb !== undefined) input.limits.memory_mb = opts.memoryMb;
            if (opts.cpuPercent !== undefined) input.limits.cpu_percent = opts.cpuPercent;
          }
          const info = await ctx.client.addRegistration(input);
          if (ctx.json) printJson(io, info);
          else io.stdout(fmt.instanceDetails(info));
        },
      ),
    );

  ctl
    .command('remove <id>')
    .description('stop and remove a registration (admin only)')
    .action(
      action(async (ctx, id: string) => {
        await requireFeature(ctx, FEATURES.registrations, 'removing registrations');
        await ctx.client.removeRegistration(id);
        if (ctx.json) printJson(io, { id, removed: true });
        else io.stdout(`removed ${id}\n`);
      }),
    );

  ctl
    .command('restart <id>')
    .description("restart an instance's osqueryd")
    .action(
      action(async (ctx, id: string) => {
        await requireFeature(ctx, FEATURES.restart, 'restarting instances');
        const info = await ctx.client.restartInstance(id);
        if (ctx.json) printJson(io, info);
        else io.stdout(fmt.instanceDetails(info));
      }),
    );

  ctl
    .command('query <id> <sql>')
    .description("run SQL through the instance's osqueryd")
    .option('--timeout-ms <n>', 'query timeout (default: server default)', positiveInt)
    .action(
      action(async (ctx, id: string, sql: string, opts: { timeoutMs?: number }) => {
        await requireFeature(ctx, FEATURES.query, 'queries');
        const rows = await ctx.client.query(id, sql, opts.timeoutMs ?? 0);
        if (ctx.json) printRows(io, rows);
        else io.stdout(fmt.rowsTable(rows));
      }),
    );

  ctl
    .command('history <id>')
    .description('past and current osqueryd runs, newest first')
    .option('--limit <n>', 'at most this many runs (default: server default)', positiveInt)
    .action(
      action(async (ctx, id: string, opts: { limit?: number }) => {
        await requireFeature(ctx, FEATURES.history, 'run history');
        const runs = await ctx.client.history(id, opts.limit ?? 0);
        if (ctx.json) printJson(io, runs);
        else io.stdout(fmt.historyTable(runs));
      }),
    );

  ctl
    .command('logs <id>')
    .description("osqueryd stdout/stderr of the instance's current run")
    .option('-f, --follow', 'keep printing new lines until the run ends')
    .option('--no-past', 'skip lines already written (only new ones)')
    .action(
      action(async (ctx, id: string, opts: { follow?: boolean; past: boolean }) => {
        await requireFeature(ctx, FEATURES.streamOutput, 'streaming output');
        const color = colorEnabled(process.stdout, io.env);
        let follow = opts.follow === true;
        if (follow && !ctx.version.features.includes(FEATURES.streamOutputFollow)) {
          io.stderr('launcher ctl: server does not support following output; printing what is there\n');
          follow = false;
        }
        for await (const line of ctx.client.streamOutput(id, { fromBeginning: opts.past, follow })) {
          io.stdout(
            ctx.json
              ? `${JSON.stringify(wireJson({ ...line, severity: fmt.outputSeverity(line.text) }))}\n`
              : fmt.outputLineText(line, color),
          );
        }
        if (follow && !ctx.json) io.stderr('launcher ctl: output ended (the run ended or the launcher stopped)\n');
      }),
    );

  addUpdateCommands(ctl, action);

  const quarantine = ctl.command('quarantine').description('queries quarantined for a registration after crashing or hanging its osqueryd');
  quarantine
    .command('list [id]')
    .description('quarantined queries of one registration, or of every one you may see')
    .action(
      action(async (ctx, id: string | undefined) => {
        await requireFeature(ctx, FEATURES.quarantine, 'query quarantine');
        const entries = await ctx.client.listQuarantine(id ?? '');
        if (ctx.json) printJson(io, entries);
        else io.stdout(quarantineTable(entries));
      }),
    );
  quarantine
    .command('release <id> <query>')
    .description('let a quarantined query run again: a scheduled query name, a SQL hash (prefix) or the SQL')
    .action(
      action(async (ctx, id: string, query: string) => {
        await requireFeature(ctx, FEATURES.quarantine, 'query quarantine');
        const released = await ctx.client.releaseQuarantine(id, query);
        if (ctx.json) printJson(io, released);
        else io.stdout(releasedText(id, released));
      }),
    );

  return ctl;
}
