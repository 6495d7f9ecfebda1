import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

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
  const level = options.level ?? (process.env.LAUNCHER_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
  const pretty = options.pretty ?? (process.stdout.isTTY === true && process.env.LAUNCHER_LOG_FORMAT !== 'json');
  const base = { name: options.name ?? 'launcher' };
  if (options.destination) return pino({ level, base }, options.destination);
  if (pretty) {
    return pino({
      level,
      base,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' } },
    });
  }
  return pino({ level, base });
}

/** A logger that drops everything: the default for library code and tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export function componentLogger(parent: Logger, component: string, bindings: Record<string, string | number> = {}): Logger {
  return parent.child({ component, ...bindings });
}
