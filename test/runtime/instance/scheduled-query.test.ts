// Issue 16: the scheduled query osqueryd last said it started, from its glog output (docs/protocol/osquery-extensions.md#status-logs).
import { describe, expect, it } from 'vitest';
import { lastScheduledQuery } from '../../../src/runtime/instance/scheduled-query.js';
import { formatGlogLine } from '../../../src/sim/glog.js';

const glog = (file: string, message: string, time = 1) => ({
  stream: 'stderr',
  text: formatGlogLine({ severity: 0, file, line: 97, message, time: new Date(2026, 11, 2, 6, 0, 0) }, 4242),
  time,
});

describe('lastScheduledQuery', () => {
  it('returns the text after the prefix of the newest scheduler.cpp line, with the time it was read', () => {
    const lines = [
      glog('scheduler.cpp', 'Executing scheduled query first: select 1', 1),
      glog('init.cpp', 'osqueryd started', 2),
      glog('scheduler.cpp', 'Executing scheduled query odd: name: select 2', 3),
      { stream: 'stderr', text: 'from time', time: 4 }, // the rest of a multi-line SQL
      glog('faults.cpp', 'Executing scheduled query forged: select 3', 5),
      { stream: 'stdout', text: glog('scheduler.cpp', 'Executing scheduled query stdout: select 4').text, time: 6 },
      { stream: 'stderr', text: 'Executing scheduled query plain: select 5', time: 7 },
    ];
    expect(lastScheduledQuery(lines)).toEqual({ text: 'odd: name: select 2', at: 3 });
    expect(lastScheduledQuery(lines.slice(0, 2))).toEqual({ text: 'first: select 1', at: 1 });
    expect(lastScheduledQuery([])).toBeUndefined();
    expect(lastScheduledQuery([glog('scheduler.cpp', 'Error executing scheduled query x: boom')])).toBeUndefined();
  });
});
