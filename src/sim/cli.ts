/**
 * gflags-style command-line parsing, as osqueryd does it:
 * `--flag=value`, `--flag value` (non-bool flags only), `--flag` and
 * `--noflag` for bools, one or two leading dashes, `--` ends flags, and
 * `--flagfile=<path>` expands to the file's lines (one flag per line,
 * `#` comments and blank lines skipped) at the point where it appears.
 * Errors use gflags' wording; osqueryd then exits 1.
 */
import { readFileSync } from 'node:fs';
import { FlagValues, findFlag } from './flags.js';

export class CommandLineError extends Error {}

export interface CommandLine {
  flags: FlagValues;
  /** Arguments that are not flags (osqueryd ignores them). */
  positional: string[];
}

const MAX_FLAGFILE_DEPTH = 8;

export function parseCommandLine(
  argv: readonly string[],
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): CommandLine {
  const flags = new FlagValues();
  const positional: string[] = [];
  parseInto(flags, positional, argv, readFile, 0);
  return { flags, positional };
}

function parseInto(
  flags: FlagValues,
  positional: string[],
  argv: readonly string[],
  readFile: (path: string) => string,
  depth: number,
): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      return;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    let name = eq >= 0 ? body.slice(0, eq) : body;
    let value: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    let def = findFlag(name);
    if (!def) {
      // gflags: `--nox` means `--x=false` when x is a bool flag.
      const negated = name.startsWith('no') ? findFlag(name.slice(2)) : undefined;
      if (!negated || value !== undefined) throw new CommandLineError(`ERROR: unknown command line flag '${name}'`);
      if (negated.type !== 'bool')
        throw new CommandLineError(`ERROR: boolean value (${name}) specified for ${negated.type} command line flag`);
      def = negated;
      name = negated.name;
      value = 'false';
    }
    if (value === undefined) {
      if (def.type === 'bool') {
        value = 'true';
      } else if (i + 1 < argv.length) {
        value = argv[++i]!;
      } else {
        throw new CommandLineError(`ERROR: flag '${arg}' is missing its argument; flag description: ${def.description}`);
      }
    }
    const res = flags.set(name, value);
    if (!res.ok) throw new CommandLineError(res.error);
    if (def.name === 'flagfile' && value !== '') {
      if (depth >= MAX_FLAGFILE_DEPTH) throw new CommandLineError(`ERROR: flagfile nesting is deeper than ${MAX_FLAGFILE_DEPTH}: ${value}`);
      let text: string;
      try {
        text = readFile(value);
      } catch {
        throw new CommandLineError(`ERROR: can't open flagfile '${value}'`);
      }
      parseInto(flags, positional, flagfileArgs(text), readFile, depth + 1);
    }
  }
}

/** One flag per line; `--name value` on a line is split at the first blank. */
function flagfileArgs(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(-[^=\s]+)\s+(.*)$/.exec(line);
    if (m) out.push(m[1]!, m[2]!);
    else out.push(line);
  }
  return out;
}
