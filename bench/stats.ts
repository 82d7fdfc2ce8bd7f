/**
 * The statistics the benchmarks report: summaries, ranking agreement, the exit
 * curves of a decision score and their area, the pruning speed-up limit. Means,
 * quantiles and Spearman's rho (mid-ranks for ties) come from simple-statistics.
 */
import { mean, quantileSorted, sampleRankCorrelation } from "simple-statistics";
import { topVisualTokens } from "../gpu-worker/engine/rank-visual-tokens.js";
import { seededRandom } from "../scene-generator/random.js";

export interface Summary {
  n: number;
  mean: number;
  q1: number;
  median: number;
  q3: number;
}

/** Mean and quartiles (simple-statistics' quantile); NaN entries are left out and n says how many remain. */
export function summarize(values: number[]): Summary {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return { n: 0, mean: Number.NaN, q1: Number.NaN, median: Number.NaN, q3: Number.NaN };
  return {
    n: finite.length,
    mean: mean(finite),
    q1: quantileSorted(finite, 0.25),
    median: quantileSorted(finite, 0.5),
    q3: quantileSorted(finite, 0.75),
  };
}

/** Spearman's rank correlation; NaN when either ranking is constant (no order to compare). */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`rankings differ in length: ${a.length} vs ${b.length}`);
  if (a.length < 2) return Number.NaN;
  return sampleRankCorrelation(Array.from(a), Array.from(b));
}

/** Share of the top ceil(r·N) tokens of `a` that are also in the top ceil(r·N) of `b` (the engine's own selection). */
export function topOverlap(a: ArrayLike<number>, b: ArrayLike<number>, retention: number): number {
  const top = new Set(topVisualTokens(b, retention));
  const mine = topVisualTokens(a, retention);
  return mine.filter((i) => top.has(i)).length / mine.length;
}

/** Share of `cells` that are among the top ceil(r·N) of a ranking; NaN when there are no cells. */
export function cellRecall(ranking: ArrayLike<number>, cells: number[], retention: number): number {
  if (cells.length === 0) return Number.NaN;
  const top = new Set(topVisualTokens(ranking, retention));
  return cells.filter((c) => top.has(c)).length / cells.length;
}

/** A ranking that orders n tokens uniformly at random, reproducibly from (seed, stream). */
export function randomRanking(n: number, seed: number, stream: number): number[] {
  const order = seededRandom(seed, stream).shuffle([...Array(n).keys()]);
  const ranking = new Array<number>(n);
  order.forEach((token, place) => {
    ranking[token] = n - place;
  });
  return ranking;
}

/** The speed-up bound of pruning at layer K of L to a fraction r of the visual tokens: L / (K + (L - K)·r). */
export function speedupLimit(layers: number, pruneLayer: number, retention: number): number {
  return layers / (pruneLayer + (layers - pruneLayer) * retention);
}

export interface ExitPoint {
  /** Requests exit when their score is >= threshold. */
  threshold: number;
  exitFraction: number;
  accuracy: number;
}

/**
 * Accuracy of the combined system (exit → the small answer, else the fallback
 * answer) at every distinct observed score used as the threshold, plus the
 * point where nothing exits. Sorted by exit fraction, from 0 to 1.
 */
export function exitCurve(scores: number[], smallCorrect: boolean[], fallbackCorrect: boolean[]): ExitPoint[] {
  const n = scores.length;
  if (n === 0 || smallCorrect.length !== n || fallbackCorrect.length !== n)
    throw new Error("exitCurve needs equal, non-empty inputs");
  const order = [...scores.keys()].sort((a, b) => (scores[b] as number) - (scores[a] as number));
  let right = fallbackCorrect.filter(Boolean).length;
  const points: ExitPoint[] = [{ threshold: Number.POSITIVE_INFINITY, exitFraction: 0, accuracy: right / n }];
  for (let i = 0; i < n; ) {
    const threshold = scores[order[i] as number] as number;
    // Every request that ties at this score exits together.
    for (; i < n && scores[order[i] as number] === threshold; i++) {
      const k = order[i] as number;
      right += Number(smallCorrect[k]) - Number(fallbackCorrect[k]);
    }
    points.push({ threshold, exitFraction: i / n, accuracy: right / n });
  }
  return points;
}

/** Signed area between a curve over [0, 1] and a horizontal line (trapezoids); positive when the curve lies above. */
export function areaAbove(points: { exitFraction: number; accuracy: number }[], level: number): number {
  let area = 0;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1] as ExitPoint;
    const b = points[i] as ExitPoint;
    area += ((a.accuracy + b.accuracy) / 2 - level) * (b.exitFraction - a.exitFraction);
  }
  return area;
}

/** At most `max` points of a curve, evenly spaced in exit fraction, keeping both ends (for plots and JSON). */
export function thin<T extends { exitFraction: number }>(points: T[], max: number): T[] {
  if (points.length <= max) return points;
  const out: T[] = [];
  let next = 0;
  for (const [i, p] of points.entries()) {
    if (i === 0 || i === points.length - 1 || p.exitFraction >= next) {
      out.push(p);
      next = p.exitFraction + 1 / (max - 1);
    }
  }
  return out;
}

/** Half-width of the normal-approximation 95% interval of a proportion. */
export function ci95(p: number, n: number): number {
  return n > 0 ? 1.96 * Math.sqrt((p * (1 - p)) / n) : Number.NaN;
}
