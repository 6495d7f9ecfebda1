/**
 * Rejected TLS handshakes on the control API, logged at warn (issue 13):
 * who (peer address, and the certificate subject when the client sent one,
 * trusted or not) and why. Rate-limited with bounded memory: the first
 * rejection of a (peer, subject, reason) in an interval is logged at once,
 * later ones in the same interval are only counted and reported as
 * `suppressed` when the interval ends; at most `maxKeys` keys are tracked,
 * beyond that rejections share one "(other peers)" key. A flood of bad
 * handshakes therefore yields a bounded number of lines.
 */
import type { Logger } from '../log/logger.js';

export interface HandshakeRejection {
  /** Remote address (no port: every connection has its own), or "unix socket". */
  peer: string;
  /** The certificate subject the client presented, when it presented one. */
  subject?: string;
  reason: string;
  /** OpenSSL / Node error code or certificate verification error. */
  code?: string;
}

export interface HandshakeLogOptions {
  intervalMs?: number;
  maxKeys?: number;
}

interface Entry {
  rejection: HandshakeRejection;
  windowStart: number;
  suppressed: number;
}

const OTHER: HandshakeRejection = { peer: '(other peers)', reason: 'rejected handshakes beyond the tracked peers' };

/** A client-chosen string, made safe and short for a log line. */
export function printable(text: string, max = 200): string {
  const clean = text.replace(/[\x00-\x1f\x7f]+/g, ', ');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

export class HandshakeLog {
  private readonly entries = new Map<string, Entry>();
  private readonly intervalMs: number;
  private readonly maxKeys: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly logger: Logger,
    options: HandshakeLogOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 60_000;
    this.maxKeys = options.maxKeys ?? 256;
    this.timer = setInterval(() => this.flush(false), this.intervalMs);
    this.timer.unref();
  }

  rejected(rejection: HandshakeRejection): void {
    let key = `${rejection.peer}\n${rejection.subject ?? ''}\n${rejection.reason}`;
    if (!this.entries.has(key) && this.entries.size >= this.maxKeys) {
      key = '\n(other)';
      rejection = OTHER;
    }
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry && now - entry.windowStart < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    this.write(rejection, entry?.suppressed ?? 0);
    this.entries.set(key, { rejection, windowStart: now, suppressed: 0 });
  }

  /** Report what was suppressed in ended intervals (all of it with `all`) and forget quiet keys. */
  private flush(all: boolean): void {
    const now = Date.now();
    for (const [key, entry] of this.entries) {
      if (!all && now - entry.windowStart < this.intervalMs) continue;
      if (entry.suppressed > 0) this.write(entry.rejection, entry.suppressed, true);
      this.entries.delete(key);
    }
  }

  private write(r: HandshakeRejection, suppressed: number, summary = false): void {
    this.logger.warn(
      { peer: r.peer, subject: r.subject ?? null, reason: r.reason, code: r.code ?? null, suppressed, interval_ms: this.intervalMs },
      summary ? 'control API TLS handshakes rejected (suppressed repeats)' : 'control API TLS handshake rejected',
    );
  }

  close(): void {
    clearInterval(this.timer);
    this.flush(true);
  }
}
