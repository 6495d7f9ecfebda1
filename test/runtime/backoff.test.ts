import { describe, expect, it } from 'vitest';
import { RestartBackoff } from '../../src/runtime/backoff.js';

describe('RestartBackoff', () => {
  it('grows exponentially to the cap', () => {
    const b = new RestartBackoff({ initialMs: 100, maxMs: 1_000, jitter: 0 });
    expect([0, 0, 0, 0, 0, 0].map(() => b.failure(0))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(b.failures).toBe(6);
  });

  it('keeps jittered delays within ±jitter and still increasing', () => {
    for (const r of [0, 0.5, 0.999]) {
      const b = new RestartBackoff({ initialMs: 1_000, maxMs: 60_000, jitter: 0.2 }, () => r);
      const delays = [0, 0, 0, 0].map(() => b.failure(0));
      delays.forEach((d, i) => {
        const base = 1_000 * 2 ** i;
        expect(d).toBeGreaterThanOrEqual(base * 0.8);
        expect(d).toBeLessThanOrEqual(base * 1.2);
      });
      expect([...delays].sort((x, y) => x - y)).toEqual(delays);
    }
  });

  it('starts over after a stable run', () => {
    const b = new RestartBackoff({ quickRestartMs: 7, initialMs: 100, jitter: 0, stableAfterMs: 5_000 });
    b.failure(0);
    b.failure(0);
    expect(b.failure(4_999)).toBe(400);
    // The first crash after a stable run is a one-off: the quick delay; the series starts over after it.
    expect(b.failure(5_000)).toBe(7);
    expect(b.failure(10)).toBe(100);
  });

  // issue 14: the first restart of a crashed stable instance waited the full backoff (1 s and growing).
  it('restarts the first crash of a running instance after the quick delay, then grows for a crash loop', () => {
    const b = new RestartBackoff({ quickRestartMs: 50, initialMs: 1_000, maxMs: 60_000, jitter: 0, stableAfterMs: 10_000 });
    expect(b.failure(3_000)).toBe(50);
    expect([2_000, 500, 0, 0].map((u) => b.failure(u))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(b.failure(10_000)).toBe(50);
    expect(b.failure(0)).toBe(1_000);
  });

  it('grows at once for a run that never got running (no quick delay for a launch failure)', () => {
    const b = new RestartBackoff({ quickRestartMs: 50, initialMs: 1_000, jitter: 0 });
    expect(b.failure(0)).toBe(1_000);
    expect(b.failure(0)).toBe(2_000);
  });

  it('flags a crash loop at the threshold within the window, and forgets old failures', () => {
    const b = new RestartBackoff({ crashLoopThreshold: 3, crashLoopWindowMs: 1_000 });
    b.failure(0, 0);
    b.failure(0, 100);
    expect(b.crashLoop(100)).toBe(false);
    b.failure(0, 200);
    expect(b.crashLoop(200)).toBe(true);
    expect(b.crashLoop(1_150)).toBe(false);
  });
});
