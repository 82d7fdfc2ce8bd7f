/**
 * A threshold that holds a promise: from shadow samples (the decision score of an early exit and whether the large
 * model agreed), the lowest exit threshold at which the disagreement among exits stays under a target, with 95%
 * confidence.
 *
 * Fixed-sequence testing: candidate thresholds are taken from the strictest down, one every `step` exits, starting
 * at the fewest exits that could ever certify the target (n₀ with no disagreement: (1 - target)^n₀ ≤ alpha; a
 * stricter candidate could only fail and end the walk). So candidate j is the (n₀ + j·step)-th highest score: they
 * depend on the scores and the target alone, never on the agreements. At each candidate
 * the null hypothesis "the disagreement of exits at this threshold exceeds the target" is rejected when the
 * one-sided Clopper–Pearson upper bound of the observed disagreements is under the target; the walk stops at the
 * first candidate that fails. Testing in a fixed order and stopping at the first failure keeps the chance of
 * certifying any threshold whose true disagreement exceeds the target at alpha (5%), with no correction for the
 * number of candidates. The guarantee assumes the samples are exchangeable with the traffic the threshold will
 * serve: drift is why the curve is recomputed from a window of recent samples.
 */
import { clopperPearsonUpper } from "./clopper-pearson.js";
import { at, type Labelled } from "./isotonic.js";

/** Above every decision score (all lie in [0, 1]): the threshold at which nothing exits. */
export const NEVER_EXIT = 2;

export interface CurvePoint {
  threshold: number;
  /** Samples at or above the threshold: the exits it would have made. */
  exits: number;
  /** Of those, the ones the large model answered differently. */
  disagreements: number;
  /** The 95% (1 - alpha) upper confidence bound of the disagreement among those exits. */
  upper: number;
}

export interface CurveOptions {
  /** A candidate every this many exits (default 20). */
  step?: number;
  alpha?: number;
}

/** The fewest exits whose upper bound can be under `target` (none of them disagreeing). */
export function fewestToCertify(target: number, alpha = 0.05): number {
  return target >= 1 ? 1 : Math.max(1, Math.ceil(Math.log(alpha) / Math.log1p(-target)));
}

/** The candidates for `target` in test order, strictest first. */
export function exitCurve(samples: readonly Labelled[], target: number, options: CurveOptions = {}): CurvePoint[] {
  const step = options.step ?? 20;
  const alpha = options.alpha ?? 0.05;
  const sorted = [...samples].sort((a, b) => b.score - a.score);
  const points: CurvePoint[] = [];
  let disagreements = 0;
  let counted = 0;
  for (let j = fewestToCertify(target, alpha); j <= sorted.length; j += step) {
    const threshold = at(sorted, j - 1).score;
    // Ties: every sample at the threshold exits with it.
    while (counted < sorted.length && at(sorted, counted).score >= threshold) {
      if (!at(sorted, counted).agree) disagreements++;
      counted++;
    }
    if (points.at(-1)?.threshold === threshold) continue;
    points.push({
      threshold,
      exits: counted,
      disagreements,
      upper: clopperPearsonUpper(disagreements, counted, alpha),
    });
  }
  return points;
}

/**
 * The lowest candidate certified for `target` by the fixed sequence (its point), or null when even the strictest
 * fails: then nothing may exit (NEVER_EXIT).
 */
export function certifiedPoint(curve: readonly CurvePoint[], target: number): CurvePoint | null {
  let certified: CurvePoint | null = null;
  for (const point of curve) {
    if (point.upper > target) break;
    certified = point;
  }
  return certified;
}

export interface Band {
  from: number;
  to: number;
  samples: number;
  agreed: number;
}

/** Agreement by score band of width 1/bands, for the operator's table. */
export function agreementByBand(samples: readonly Labelled[], bands = 10): Band[] {
  const rows = Array.from({ length: bands }, (_, i) => ({
    from: i / bands,
    to: (i + 1) / bands,
    samples: 0,
    agreed: 0,
  }));
  for (const s of samples) {
    const row = at(rows, Math.max(0, Math.min(bands - 1, Math.floor(s.score * bands))));
    row.samples++;
    if (s.agree) row.agreed++;
  }
  return rows;
}
