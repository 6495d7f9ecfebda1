/**
 * osqueryd's status log: glog lines on stderr, e.g.
 * `I1121 12:00:00.000123  4242 init.cpp:412] osqueryd started [version=5.12.1-sim]`,
 * and the same entries fanned out to subscribers (the logger plugins' status
 * relay, the filesystem logger's osqueryd.INFO). The source file names and
 * line numbers name the osquery file that logs the equivalent line; the
 * numbers are only indicative.
 */
export type Severity = 0 | 1 | 2 | 3;

export interface StatusEntry {
  severity: Severity;
  /** Source file basename, as glog's `f`. */
  file: string;
  line: number;
  message: string;
  time: Date;
}

type Listener = (entry: StatusEntry) => void;

const LETTERS = ['I', 'W', 'E', 'F'] as const;
const pad = (n: number, w: number) => String(n).padStart(w, '0');

/** One glog text line (no trailing newline), local time like glog. */
export function formatGlogLine(e: StatusEntry, tid: number): string {
  const t = e.time;
  const usec = t.getMilliseconds() * 1000;
  return (
    `${LETTERS[e.severity]}${pad(t.getMonth() + 1, 2)}${pad(t.getDate(), 2)} ` +
    `${pad(t.getHours(), 2)}:${pad(t.getMinutes(), 2)}:${pad(t.getSeconds(), 2)}.${pad(usec, 6)} ` +
    `${String(tid).padStart(5, ' ')} ${e.file}:${e.line}] ${e.message}`
  );
}

export class Glog {
  /** `--verbose`: VLOG lines are emitted. */
  verbose = false;
  /** `--logger_stderr` / `--logger_min_stderr`. */
  toStderr = true;
  minStderr = 0;
  private readonly listeners = new Set<Listener>();

  info(file: string, line: number, message: string): void {
    this.emit(0, file, line, message);
  }

  warning(file: string, line: number, message: string): void {
    this.emit(1, file, line, message);
  }

  error(file: string, line: number, message: string): void {
    this.emit(2, file, line, message);
  }

  /** VLOG(1): only with --verbose. */
  vlog(file: string, line: number, message: string): void {
    if (this.verbose) this.emit(0, file, line, message);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(severity: Severity, file: string, line: number, message: string): void {
    const entry: StatusEntry = { severity, file, line, message, time: new Date() };
    if (this.toStderr && severity >= this.minStderr) process.stderr.write(`${formatGlogLine(entry, process.pid)}\n`);
    for (const l of this.listeners) {
      try {
        l(entry);
      } catch {
        // A failing sink must not stop the daemon or the other sinks.
      }
    }
  }
}

/** The process's status log (the stand-in is one daemon per process). */
export const glog = new Glog();
