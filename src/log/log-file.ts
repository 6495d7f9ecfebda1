/**
 * The supervisor's own log lines in `<root>/supervisor.log` (issue 18), so a
 * flare finds the last lines whether the supervisor is up, stopped or
 * crashed. Bounded: past `maxBytes` the file becomes `supervisor.log.1` (the
 * previous `.1` is replaced) and a new file starts, so at most twice the cap
 * is on disk. Created 0600; written synchronously, like pino's own stdout.
 */
import { closeSync, openSync, renameSync, statSync, writeSync } from 'node:fs';

export const SUPERVISOR_LOG_FILE = 'supervisor.log';
export const SUPERVISOR_LOG_MAX_BYTES = 8 * 1024 * 1024;

export class BoundedLogFile {
  private fd: number | undefined;
  private bytes = 0;
  private nextOpenAttempt = 0;
  /** Lines lost because the file could not be opened or written. */
  dropped = 0;

  constructor(
    readonly path: string,
    private readonly maxBytes = SUPERVISOR_LOG_MAX_BYTES,
  ) {}

  write(line: string): void {
    if (this.fd === undefined && !this.open()) {
      this.dropped++;
      return;
    }
    try {
      this.bytes += writeSync(this.fd!, line);
    } catch {
      this.dropped++;
      this.close();
      return;
    }
    if (this.bytes >= this.maxBytes) this.rotate();
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      // already gone
    }
    this.fd = undefined;
  }

  private open(): boolean {
    const now = Date.now();
    if (now < this.nextOpenAttempt) return false;
    try {
      this.fd = openSync(this.path, 'a', 0o600);
      this.bytes = statSync(this.path).size;
      return true;
    } catch (err) {
      // ENOENT: the root directory is made a moment later; anything else: retry at most once a second.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.nextOpenAttempt = now + 1000;
      return false;
    }
  }

  private rotate(): void {
    this.close();
    try {
      renameSync(this.path, `${this.path}.1`);
    } catch {
      // keep appending to the same file rather than lose lines
    }
  }
}
