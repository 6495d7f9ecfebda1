/**
 * Entry point of `bin/osqueryd-sim`, the osqueryd stand-in. Command-line
 * errors, `--version` and `--help` are answered before the daemon (Thrift,
 * SQLite) is even loaded, so they are fast.
 */
import { setFlagsFromString } from 'node:v8';
import { CommandLineError, parseCommandLine } from './cli.js';
import { parseFaults, scopedFaults } from './faults.js';
import { FLAG_ALIASES, FLAG_TABLE, findFlag } from './flags.js';
import { OSQUERY_VERSION } from './version.js';

/**
 * `--help` in osqueryd's format, one `    --name VALUE  description` line per
 * flag. Unlike osqueryd, hidden flags and old aliases are listed too: the
 * launcher reads this list to refuse unknown flags (src/runtime/known-flags.ts),
 * and it must hold every flag the stand-in accepts.
 */
function usage(): string {
  const line = (name: string, type: string, text: string) => `    --${name}${type === 'bool' ? '' : ' VALUE'}  ${text}`;
  const lines = FLAG_TABLE.filter((d) => d.name !== 'help' && d.name !== 'version').map((d) =>
    line(d.name, d.type, `${d.description}${d.cli ? ' (CLI only)' : ''} [default: ${JSON.stringify(d.default)}]`),
  );
  for (const [alias, name] of Object.entries(FLAG_ALIASES)) lines.push(line(alias, findFlag(name)?.type ?? 'string', `Alias of --${name}`));
  return `osquery ${OSQUERY_VERSION}, your OS as a high-performance relational database (osqueryd-sim stand-in)\nUsage: osqueryd [OPTION]...\n\nosquery command line flags:\n\n${lines.join('\n')}\n`;
}

/**
 * V8 optimises a WASM function with TurboFan, on background threads, once it has run for a budget (default ~1.8 M
 * "bytes executed"). SQLite's start-up (engine init, the core tables' schema) crosses that budget for hundreds of
 * functions: ~250 ms of TurboFan CPU on top of ~250 ms for everything else, before the manager socket listens. Under a
 * tenant's CPU quota that doubled the stand-in's start-up (issue 14, adr/0025). With a 50× budget start-up stays on
 * the baseline compiler (Liftoff) while a query that really runs long is still optimised. Read when the module is
 * compiled, so it is set before the daemon (and the WASM module) loads; the SQL and its results are the same.
 */
const WASM_TIERING_FLAG = '--wasm-tiering-budget=90000000';

export async function main(argv: readonly string[]): Promise<void> {
  let flags;
  try {
    flags = parseCommandLine(argv).flags;
  } catch (err) {
    if (!(err instanceof CommandLineError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  if (flags.bool('version')) {
    process.stdout.write(`osqueryd version ${OSQUERY_VERSION}\n`);
    process.exit(0);
  }
  if (flags.bool('help')) {
    process.stdout.write(usage());
    process.exit(0);
  }
  let faults;
  try {
    faults = scopedFaults(parseFaults(process.env.OSQUERYD_SIM_FAULTS), flags.get('database_path'));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
  setFlagsFromString(WASM_TIERING_FLAG);
  const { runDaemon } = await import('./daemon.js');
  await runDaemon(flags, faults);
}
