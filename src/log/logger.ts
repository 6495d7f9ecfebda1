import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';
import { colorEnabled } from './color.js';

export type { Logger };

export interface RootLoggerOptions {
  level?: LevelWithSilent;
  /** Force pretty (true) or JSON (false); by default pretty only on a TTY. */
  pretty?: boolean;
  /** Where JSON lines go; stdout by default. */
  destination?: DestinationStream;
  name?: string;
}

/**
 * The process's root logger: JSON lines by default (journald, log shippers),
 * human-readable only when stdout is a terminal. Components take a child with
 * `component` and, where relevant, `registration_id` and `run_id` bindings.
 */
export function createRootLogger(options: RootLoggerOptions = {}): Logger {
  const level = options.level ?? envLogLevel();
  const pretty = options.pretty ?? (process.stdout.isTTY === true && process.env.LAUNCHER_LOG_FORMAT !== 'json');
  const base = { name: options.name ?? 'launcher' };
  if (options.destination) return pino({ level, base }, options.destination);
  if (pretty) {
    return pino({
      level,
      base,
      transport: {
        target: 'pino-pretty',
        options: { colorize: colorEnabled(process.stdout), translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' },
      },
    });
  }
  return pino({ level, base });
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
