/**
 * osqueryd's reason for exiting, read from its final output lines: what the
 * run's error and `last_error` append to "exited with code 1 during launch".
 */

/** glog ERROR or FATAL line: `E1122 12:00:00.000000  4242 file.cpp:12] message`. */
const GLOG_ERROR = /^[EF]\d{4} \S+\s+\d+ \S+\] /;
/** Any glog line (INFO and WARNING ones say what osqueryd did, not why it stopped). */
const GLOG_ANY = /^[IWEF]\d{4} \S+\s+\d+ \S+\] /;
/** Longest last-words text put into an error message. */
const LAST_WORDS_MAX = 400;

/**
 * The last glog ERROR/FATAL line (its message), else — when osqueryd exited by
 * itself with a code (`plain`), not killed by a signal — the last stderr line
 * that is not a glog INFO/WARNING line: gflags' `ERROR: unknown command line
 * flag 'x'` or `ERROR: illegal value ...` (issue 13).
 */
export function lastWords(lines: ReadonlyArray<{ stream: string; text: string }>, plain = true): string | undefined {
  const stderr = lines.filter((l) => l.stream === 'stderr' && l.text.trim() !== '');
  const glog = stderr.filter((l) => GLOG_ERROR.test(l.text)).at(-1);
  const text = glog
    ? glog.text.slice(glog.text.indexOf('] ') + 2) || glog.text
    : plain
      ? stderr
          .filter((l) => !GLOG_ANY.test(l.text))
          .at(-1)
          ?.text.trim()
      : undefined;
  if (!text) return undefined;
  return text.length > LAST_WORDS_MAX ? `${text.slice(0, LAST_WORDS_MAX)}…` : text;
}
