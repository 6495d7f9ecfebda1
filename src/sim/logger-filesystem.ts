/**
 * osqueryd's built-in `filesystem` logger plugin, writing into
 * `--logger_path`: differential results to `osqueryd.results.log`, snapshots
 * to `osqueryd.snapshots.log` (one JSON line each), and status lines in glog
 * text to `osqueryd.INFO`, `.WARNING` and `.ERROR` (each line goes to its
 * severity's file and every lower one, as glog does). Plain files, not
 * glog's dated files behind symlinks. Files get `--logger_mode`.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { response, status, type PluginRequest } from '../osquery/protocol.js';
import type { FlagValues } from './flags.js';
import { formatGlogLine, type StatusEntry } from './glog.js';
import type { CorePlugin } from './registry.js';

/** A core logger plugin also takes status lines directly (osquery's logStatus). */
export interface CoreLoggerPlugin extends CorePlugin {
  logStatus(entries: readonly StatusEntry[]): void;
}

const SEVERITY_FILES = ['osqueryd.INFO', 'osqueryd.WARNING', 'osqueryd.ERROR', 'osqueryd.FATAL'];

export function filesystemLoggerPlugin(flags: FlagValues): CoreLoggerPlugin {
  let warned = false;
  const append = (file: string, text: string) => {
    const dir = flags.get('logger_path');
    try {
      mkdirSync(dir, { recursive: true });
      appendFileSync(join(dir, file), text, { mode: flags.num('logger_mode') });
    } catch (err) {
      if (!warned) {
        warned = true;
        // Not through glog: the failure would loop back into this plugin.
        process.stderr.write(`filesystem logger cannot write to ${dir}: ${(err as Error).message}\n`);
      }
    }
  };
  return {
    call(request: PluginRequest) {
      if (request.init !== undefined) {
        try {
          mkdirSync(flags.get('logger_path'), { recursive: true });
        } catch (err) {
          return response(status(1, `Cannot create logger_path: ${(err as Error).message}`));
        }
        return response(status(0, 'OK'));
      }
      // Feature bit 1: the filesystem logger records status logs.
      if (request.action === 'features') return response(status(1, 'OK'));
      if (request.string !== undefined) append('osqueryd.results.log', `${request.string}\n`);
      else if (request.snapshot !== undefined) append('osqueryd.snapshots.log', `${request.snapshot}\n`);
      else if (request.status === undefined && request.health === undefined && request.event === undefined) {
        return response(status(1, 'Logger plugin request unknown'));
      }
      return response(status(0, 'OK'));
    },
    logStatus(entries) {
      const bySeverity: string[] = ['', '', '', ''];
      for (const e of entries) {
        const line = `${formatGlogLine(e, process.pid)}\n`;
        for (let s = 0; s <= e.severity; s++) bySeverity[s] += line;
      }
      bySeverity.forEach((text, s) => {
        if (text !== '') append(SEVERITY_FILES[s]!, text);
      });
    },
  };
}

/** osqueryd's `stdout` logger: result lines to stdout. */
export function stdoutLoggerPlugin(): CorePlugin {
  return {
    call(request) {
      const text = request.string ?? request.snapshot;
      if (text !== undefined) process.stdout.write(`${text}\n`);
      return response(status(0, 'OK'));
    },
  };
}
