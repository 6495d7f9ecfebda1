/**
 * Fair shares of a cut (issue 19, the log buffers' total byte cap): who
 * gives up how much when `excess` must go from buffers holding `amounts`.
 * Water-filling: the largest holders are brought down to one common level,
 * so a quiet registration keeps its logs while a noisy one pays for the
 * overflow it caused, and nobody gives more than it holds.
 */

/** Shares (integers, each ≤ its amount) summing to at least `excess` (or everything when the excess is larger). */
export function fairShares(amounts: readonly number[], excess: number): number[] {
  if (excess <= 0) return amounts.map(() => 0);
  const order = amounts.map((_, i) => i).sort((a, b) => amounts[b]! - amounts[a]!);
  let level = 0;
  let top = 0;
  for (let k = 0; k < order.length; k++) {
    top += amounts[order[k]!]!;
    const candidate = (top - excess) / (k + 1);
    const next = k + 1 < order.length ? amounts[order[k + 1]!]! : 0;
    if (candidate >= next) {
      level = Math.max(0, candidate);
      break;
    }
  }
  return amounts.map((a) => Math.min(a, Math.max(0, Math.ceil(a - level))));
}
