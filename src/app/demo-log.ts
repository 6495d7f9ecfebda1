/**
 * The demo's logging: everything at the chosen level into `<root>/launcher.log`
 * (JSON lines), and only warnings and errors on the terminal, so the guide the
 * demo prints last stays readable. Terminal lines are pretty on a TTY (no
 * colour under NO_COLOR), JSON lines otherwise or with LAUNCHER_LOG_FORMAT=json.
 */
import { join } from 'node:path';
import { pino, multistream, destination, type LevelWithSilent, type Logger, type StreamEntry } from 'pino';
import pretty from 'pino-pretty';
import { colorEnabled } from '../log/color.js';

export const DEMO_LOG_FILE = 'launcher.log';

export function demoLogger(root: string, level: LevelWithSilent): Logger {
  if (level === 'silent') return pino({ level });
  const file = destination({ dest: join(root, DEMO_LOG_FILE), append: true, mkdir: true, sync: true });
  const terminalPretty = process.stderr.isTTY === true && process.env.LAUNCHER_LOG_FORMAT !== 'json';
  const terminal = terminalPretty
    ? pretty({
        colorize: colorEnabled(process.stderr),
        destination: 2,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname,name',
        sync: true,
      })
    : process.stderr;
  const order: LevelWithSilent[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
  const terminalLevel = order.indexOf(level) > order.indexOf('warn') ? level : 'warn';
  const streams: StreamEntry[] = [
    { level, stream: file },
    { level: terminalLevel, stream: terminal },
  ];
  return pino({ level, base: { name: 'launcher' } }, multistream(streams));
}
