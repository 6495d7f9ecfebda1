import { pino, destination as pinoDestination, multistream, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';
import { createRequire } from 'node:module';
import { colorEnabled } from './color.js';
import { journalDescriptor, journalStream } from './journal.js';

export type { Logger };

export interface RootLoggerOptions {
  level?: LevelWithSilent;
  /** Force pretty (true) or JSON (false); by default pretty only on a TTY. */
  pretty?: boolean;
  /** Where JSON lines go; stdout by default. */
  destination?: DestinationStream;
  name?: string;
  /** Also write every line here (the supervisor's `<root>/supervisor.log`, src/log/log-file.ts). */
  file?: { write(line: string): void };
  /** Where JOURNAL_STREAM is read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * The process's root logger: JSON lines by default (journald, log shippers),
 * human-readable only when stdout is a terminal. Components take a child with
 * `component` and, where relevant, `registration_id` and `run_id` bindings.
 */
export function createRootLogger(options: RootLoggerOptions = {}): Logger {
  const level = options.level ?? envLogLevel();
  const base = { name: options.name ?? 'launcher' };
  if (options.destination) return pino({ level, base }, options.destination);
  // Under systemd with the journal on stderr/stdout: JSON lines with their `<N>` priority (src/log/journal.ts).
  const journalFd = journalDescriptor(options.env ?? process.env);
  const isPretty =
    journalFd === undefined && (options.pretty ?? (process.stdout.isTTY === true && process.env.LAUNCHER_LOG_FORMAT !== 'json'));
  if (journalFd === undefined && !isPretty && !options.file) return pino({ level, base });
  const terminal: { write(line: string): void } =
    journalFd !== undefined
      ? journalStream(journalFd)
      : isPretty
        ? // Loaded only for a terminal (issue 14: a service's `launcher run` does not carry it).
          (createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty'))({
            colorize: colorEnabled(process.stdout),
            destination: 1,
            sync: true,
            translateTime: 'SYS:HH:MM:ss.l',
            ignore: 'pid,hostname,name',
          })
        : pinoDestination({ dest: 1, sync: true });
  // Streams take every level; the logger's own level (which SIGUSR2 changes at runtime) decides what is written.
  const streams = [{ level: 'trace' as const, stream: terminal }];
  if (options.file) streams.push({ level: 'trace', stream: options.file });
  return pino({ level, base }, multistream(streams));
}

/**
 * SIGUSR2 (issue 18): debug on when the logger is above debug, else back to
 * `configured`. Child loggers follow (pino children without their own level
 * read the root's). Returns the level now in force.
 */
export function toggleDebug(logger: Logger, configured: LevelWithSilent): LevelWithSilent {
  const debugOn = logger.levelVal <= pino.levels.values.debug!;
  const next: LevelWithSilent = debugOn ? (configured === 'debug' || configured === 'trace' ? 'info' : configured) : 'debug';
  logger.level = next;
  return next;
}

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** A bad $LAUNCHER_LOG_LEVEL: the CLI prints its message and exits 2 (usage), never pino's stack trace. */
export class LogLevelError extends RangeError {
  readonly code = 'E_CONFIG';
}

/** $LAUNCHER_LOG_LEVEL (default info); a value pino does not know is a LogLevelError naming the variable. */
export function envLogLevel(env: NodeJS.ProcessEnv = process.env): LevelWithSilent {
  const v = env.LAUNCHER_LOG_LEVEL;
  if (v === undefined || v === '') return 'info';
  if ((LOG_LEVELS as readonly string[]).includes(v)) return v as LevelWithSilent;
  throw new LogLevelError(
    `LAUNCHER_LOG_LEVEL=${JSON.stringify(v.slice(0, 100))} (environment): not a log level; use one of ${LOG_LEVELS.join(', ')}`,
  );
}

/** A logger that drops everything: the default for library code and tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export function componentLogger(parent: Logger, component: string, bindings: Record<string, string | number> = {}): Logger {
  return parent.child({ component, ...bindings });
}
