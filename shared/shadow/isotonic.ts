/**
 * The calibrated score: the decision score mapped to the probability that the large model agrees, by isotonic
 * regression (pool-adjacent-violators): the best non-decreasing step function of the score in squared error, i.e.
 * a higher score never maps to a lower agreement. Plus its expected calibration error on held-out items.
 */
export interface Labelled {
  score: number;
  agree: boolean;
}

/** One step of the fit: scores from `from` up (to the next step) map to `p`. */
export interface IsotonicStep {
  from: number;
  p: number;
}

export function fitIsotonic(samples: readonly Labelled[]): IsotonicStep[] {
  const sorted = [...samples].sort((a, b) => a.score - b.score);
  const blocks: { from: number; sum: number; n: number }[] = [];
  for (const s of sorted) {
    blocks.push({ from: s.score, sum: s.agree ? 1 : 0, n: 1 });
    // Pool while the last block's mean falls below the one before it (or ties its score: one score, one value).
    for (;;) {
      const last = blocks.at(-1);
      const prev = blocks.at(-2);
      if (!last || !prev) break;
      if (prev.sum / prev.n < last.sum / last.n && prev.from !== last.from) break;
      blocks.pop();
      prev.sum += last.sum;
      prev.n += last.n;
    }
  }
  return blocks.map((b) => ({ from: b.from, p: b.sum / b.n }));
}

/** The fitted probability at `score`: the step it falls in (below the first step: the first step's value). */
export function predictIsotonic(steps: readonly IsotonicStep[], score: number): number | null {
  if (steps.length === 0) return null;
  let lo = 0;
  let hi = steps.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (at(steps, mid).from <= score) lo = mid;
    else hi = mid - 1;
  }
  return at(steps, lo).p;
}

/** Expected calibration error: |mean predicted − observed agreement| per equal-width bin of the prediction, weighted by the bin's share. */
export function expectedCalibrationError(predicted: readonly number[], agreed: readonly boolean[], bins = 10): number {
  if (predicted.length !== agreed.length || predicted.length === 0) throw new RangeError("need equal, non-empty lists");
  const sums = Array.from({ length: bins }, () => ({ p: 0, y: 0, n: 0 }));
  predicted.forEach((p, i) => {
    const bin = at(sums, Math.min(bins - 1, Math.floor(p * bins)));
    bin.p += p;
    bin.y += agreed[i] ? 1 : 0;
    bin.n += 1;
  });
  return sums.reduce((e, b) => (b.n === 0 ? e : e + (b.n / predicted.length) * Math.abs(b.p / b.n - b.y / b.n)), 0);
}

/** list[i], which the caller knows to exist (a bad index is a bug, thrown as one). */
export function at<T>(list: readonly T[], i: number): T {
  const item = list[i];
  if (item === undefined) throw new RangeError(`index ${i} outside 0..${list.length - 1}`);
  return item;
}
