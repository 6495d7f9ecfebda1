// Issue 9 (load/soak): 20 instances under steady distributed-query and log
// load for about two minutes against a real supervisor process. No instance
// may be restarted (no health-check false positive), everything injected or
// queued must reach the device server, the buffers must drain once the load
// stops, and the supervisor's memory is sampled for its slope (recorded; see
// the bound below). bench/soak.ts runs the same driver for 15 minutes.
import { describe, expect, it } from 'vitest';
import { recordFigures, scaled } from '../../bench/reliability/figures.js';
import { runSoak } from '../../bench/soak/driver.js';

const INSTANCES = 20;
const DURATION_MS = scaled(120_000);
/**
 * The RSS slope over two minutes is noise: the supervisor's RSS swings by
 * ±15 MB with garbage collection (measured: −11.6 MB/min in one run, peaks
 * during warm-up), so it is recorded, not asserted; bench/soak.ts measures it
 * over 15 minutes. Only gross growth trips the test.
 */
const GROSS_RSS_GROWTH_MB = 64;

describe('soak', () => {
  it(`${INSTANCES} instances under query and log load for ${DURATION_MS / 1000} s: no restart, nothing lost, buffers drain`, async () => {
    const r = await runSoak({
      instances: INSTANCES,
      durationMs: DURATION_MS,
      sampleEveryMs: 3_000,
      warmupMs: 30_000,
      logsPerSecond: 4,
      queryEveryMs: 250,
      scheduleIntervalS: 2,
      progress: (line) => process.stdout.write(`[soak] ${line}\n`),
    });
    const { samples, restarts_by_instance: _byInstance, error_lines: errorLines, ...figures } = r;
    recordFigures('soak', { ...figures, samples: samples.length });

    expect(r.supervisor_exit_code, 'supervisor exit code after SIGTERM').toBe(0);
    expect(r.leaked_osqueryds).toEqual([]);
    expect(r.restarts_total, `restarts: ${JSON.stringify(r.restarts_by_instance)}; errors: ${errorLines.join('\n')}`).toBe(0);
    expect(r.logs_lost).toBe(0);
    expect(r.logs_refused).toBe(0);
    expect(r.logs_delivered).toBe(r.logs_written);
    expect(r.logs_written).toBeGreaterThan(INSTANCES * (DURATION_MS / 1000) * 2);
    expect(r.queries_answered).toBe(r.queries_sent);
    expect(r.buffered_after_drain).toBeLessThanOrEqual(2 * INSTANCES);
    expect(r.error_records, `error-level records in the supervisor log: ${errorLines.join('\n')}`).toBe(0);
    expect(r.rss_mb_end - r.rss_mb_start, `supervisor RSS ${r.rss_mb_start} → ${r.rss_mb_end} MB`).toBeLessThan(GROSS_RSS_GROWTH_MB);
  }, 600_000);
});
