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
    const b = new RestartBackoff({ initialMs: 100, jitter: 0, stableAfterMs: 5_000 });
    b.failure(0);
    b.failure(0);
    expect(b.failure(4_999)).toBe(400);
    expect(b.failure(5_000)).toBe(100);
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
