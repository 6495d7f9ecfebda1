/**
 * Figures the reliability scenarios measure. Every scenario prints its
 * figures as one line (`[reliability] <scenario> {json}`), and when
 * RELIABILITY_FIGURES names a file (bench/reliability.ts sets it) appends
 * `{"scenario":…,"figures":…}` to it, so the report is written from the
 * numbers the test runs measured. RELIABILITY_SCALE (default 1) multiplies
 * the scenarios' counts and durations for the longer bench runs.
 */
import { appendFileSync } from 'node:fs';

export function recordFigures(scenario: string, figures: Record<string, unknown>): void {
  const line = JSON.stringify({ scenario, figures });
  process.stdout.write(`[reliability] ${scenario} ${JSON.stringify(figures)}\n`);
  const file = process.env.RELIABILITY_FIGURES;
  if (file) appendFileSync(file, `${line}\n`);
}

/** RELIABILITY_SCALE as a number ≥ 1 (bench runs raise it; the test suite runs at 1). */
export function scale(): number {
  const v = Number(process.env.RELIABILITY_SCALE ?? '1');
  return Number.isFinite(v) && v >= 1 ? v : 1;
}

/** `n` scaled by RELIABILITY_SCALE, rounded. */
export function scaled(n: number): number {
  return Math.round(n * scale());
}

/** Least-squares line through (x, y): slope and intercept; slope 0 with fewer than two distinct x. */
export function linearFit(xs: readonly number[], ys: readonly number[]): { slope: number; intercept: number } {
  const n = Math.min(xs.length, ys.length);
  if (n === 0) return { slope: 0, intercept: 0 };
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i]!;
    sy += ys[i]!;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  const slope = den === 0 ? 0 : num / den;
  return { slope, intercept: my - slope * mx };
}

export const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
