/**
 * journald priorities (issue 18). When systemd connects the service's stderr
 * (or stdout) to the journal it sets `JOURNAL_STREAM=<device>:<inode>` of that
 * stream (systemd.exec(5)); a program compares it with its own descriptors so
 * an inherited variable is not trusted after a redirection. A line written to
 * such a stream that starts with `<N>` (N = syslog priority 0..7, sd-daemon(3))
 * is stored at that priority, so `journalctl -p warning` shows only warnings
 * and worse (docs/protocol/journald.md#priority-prefixes).
 */
import { fstatSync, writeSync } from 'node:fs';

/** pino level number → syslog priority: fatal 2 (crit), error 3, warn 4, info 6, debug and trace 7. */
export function journalPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/**
 * The descriptor (2 = stderr, else 1 = stdout) that `JOURNAL_STREAM` names,
 * or undefined when the variable is unset, malformed, or names neither.
 */
export function journalDescriptor(env: NodeJS.ProcessEnv = process.env): 1 | 2 | undefined {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return undefined;
  for (const fd of [2, 1] as const) {
    try {
      const st = fstatSync(fd, { bigint: true });
      if (st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!)) return fd;
    } catch {
      // closed descriptor
    }
  }
  return undefined;
}

/** A pino destination writing each JSON line to `fd` with its `<N>` priority prefix. */
export function journalStream(fd: number): { write(line: string): void } {
  return {
    write(line: string) {
      // pino writes `{"level":NN,...` first (no custom formatters here).
      const m = /^\{"level":(\d+)/.exec(line);
      const prefix = `<${journalPriority(m ? Number(m[1]) : 30)}>`;
      writeSync(fd, prefix + line);
    },
  };
}
