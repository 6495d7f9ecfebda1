/**
 * The scheduled query osqueryd last said it started, from its glog output
 * (issue 16): osqueryd's scheduler logs `Executing scheduled query <name>: <sql>`
 * (from scheduler.cpp) before it runs each scheduled query, at INFO with
 * `--schedule_lognames`, else only with `--verbose`
 * (docs/protocol/osquery-extensions.md#status-logs). Only the text after the
 * prefix is returned: the name may itself contain ": ", so matching it to a
 * query is left to whoever knows the served config (the extension).
 */

/** A glog line header, `I1122 12:00:00.000000  4242 scheduler.cpp:97] `. */
const GLOG_HEADER = /^[IWEF]\d{4} \S+\s+\d+ scheduler\.cpp:\d+\] /;
const PREFIX = 'Executing scheduled query ';

/** The last such line of `lines` (newest last): its text after the prefix and when it was read. */
export function lastScheduledQuery(
  lines: ReadonlyArray<{ stream: string; text: string; time: number }>,
): { text: string; at: number } | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (line.stream !== 'stderr') continue;
    const m = GLOG_HEADER.exec(line.text);
    if (!m) continue;
    const rest = line.text.slice(m[0].length);
    if (rest.startsWith(PREFIX)) return { text: rest.slice(PREFIX.length), at: line.time };
  }
  return undefined;
}
