/**
 * The five analyses of `bench:quality`, computed from the per-item records
 * alone: accuracy against compute per method (sgl from the cached small and sgp
 * results at each threshold), single-layer against all-layer ranking, small-large
 * ranking agreement, the exit curves of the decision scores, and the speed-up.
 */
import { mean, quantileSorted } from "simple-statistics";
import { TIERS, type Tier } from "../scene-generator/vocabulary.js";
import { configKey, type ItemRecord, type Outcome, type PrunedConfig, type PrunedMethod } from "./quality-run.js";
import type { SpeedTiming } from "./quality-speed.js";
import {
  areaAbove,
  cellRecall,
  ci95,
  type ExitPoint,
  exitCurve,
  randomRanking,
  type Summary,
  spearman,
  speedupLimit,
  summarize,
  thin,
  topOverlap,
} from "./stats.js";

export type Method = "small" | "large" | PrunedMethod | "sgl";

export interface MethodRow {
  method: Method;
  layer: number | null;
  retention: number | null;
  threshold: number | null;
  n: number;
  accuracy: number;
  ci95: number;
  byTier: Partial<Record<Tier, number>>;
  flops: number;
  acceleratorMs: number;
  wallMs: number;
  escalation: number;
  visualKept: number;
}

export interface Defaults {
  exitThreshold: number;
  exitRule: string;
  pruneLayer: number;
  pruneRetention: number;
}

function row(
  method: Method,
  records: ItemRecord[],
  pick: (r: ItemRecord) => Outcome & { escalated: boolean },
  where: Partial<MethodRow> = {},
): MethodRow {
  const outcomes = records.map(pick);
  const accuracy = mean(outcomes.map((o) => Number(o.correct)));
  const byTier: Partial<Record<Tier, number>> = {};
  for (const tier of TIERS) {
    const mine = outcomes.filter((_, i) => records[i]?.tier === tier);
    if (mine.length > 0) byTier[tier] = mean(mine.map((o) => Number(o.correct)));
  }
  return {
    method,
    layer: null,
    retention: null,
    threshold: null,
    ...where,
    n: outcomes.length,
    accuracy,
    ci95: ci95(accuracy, outcomes.length),
    byTier,
    flops: mean(outcomes.map((o) => o.flops)),
    acceleratorMs: mean(outcomes.map((o) => o.acceleratorMs)),
    wallMs: mean(outcomes.map((o) => o.wallMs)),
    escalation: mean(outcomes.map((o) => Number(o.escalated))),
    visualKept: mean(outcomes.map((o) => o.kept)),
  };
}

const pruned = (r: ItemRecord, c: PrunedConfig): Outcome => {
  const o = r.pruned[configKey(c)];
  if (!o) throw new Error(`no result for ${configKey(c)} on item ${r.index}`);
  return o;
};

/** sgl from cached results: the small answer when its decision clears the threshold, else small + the default sgp run. */
export function sglOutcome(r: ItemRecord, threshold: number, fallback: PrunedConfig): Outcome & { escalated: boolean } {
  const exits = r.small.decision >= threshold;
  if (exits) return { ...r.small, escalated: false };
  const large = pruned(r, fallback);
  return {
    answer: large.answer,
    correct: large.correct,
    flops: r.small.flops + large.flops,
    acceleratorMs: r.small.acceleratorMs + large.acceleratorMs,
    wallMs: r.small.wallMs + large.wallMs,
    kept: large.kept,
    escalated: true,
  };
}

/** Thresholds at the deciles of the observed decision scores (an even spread of exit rates), plus the configured one. */
export function sglThresholds(records: ItemRecord[], configured: number): number[] {
  const sorted = records.map((r) => r.small.decision).sort((a, b) => a - b);
  const qs = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95].map((q) => quantileSorted(sorted, q));
  return [...new Set([...qs, configured].map((t) => Math.round(t * 1e4) / 1e4))].sort((a, b) => a - b);
}

export function accuracyVsCompute(records: ItemRecord[], configs: PrunedConfig[], defaults: Defaults): MethodRow[] {
  const fallback: PrunedConfig = { method: "sgp", layer: defaults.pruneLayer, retention: defaults.pruneRetention };
  const rows = [
    row("small", records, (r) => ({ ...r.small, escalated: false })),
    row("large", records, (r) => ({ ...r.large, escalated: true })),
    ...configs.map((c) =>
      row(c.method, records, (r) => ({ ...pruned(r, c), escalated: true }), { layer: c.layer, retention: c.retention }),
    ),
    ...sglThresholds(records, defaults.exitThreshold).map((t) =>
      row("sgl", records, (r) => sglOutcome(r, t, fallback), {
        threshold: t,
        layer: fallback.layer,
        retention: fallback.retention,
      }),
    ),
  ];
  return rows;
}

export interface Agreement {
  spearman: { small: Summary; random: Summary };
  /** Top-k overlap with the large model's own ranking, at each retention. */
  overlap: { retention: number; small: Summary; random: Summary }[];
  /** Share of the question's evidence cells among the top ceil(r·N) of each ranking. */
  evidenceRecall: { retention: number; small: Summary; large: Summary; random: Summary }[];
}

export function rankingAgreement(records: ItemRecord[], retentions: number[], seed: number): Agreement {
  // A second random stream, independent of the one the "random" pruning used.
  const rand = records.map((r) => randomRanking(r.small.ranking.length, seed + 7919, r.index));
  return {
    spearman: {
      small: summarize(records.map((r) => spearman(r.small.ranking, r.large.ranking))),
      random: summarize(records.map((r, i) => spearman(rand[i] as number[], r.large.ranking))),
    },
    overlap: retentions.map((retention) => ({
      retention,
      small: summarize(records.map((r) => topOverlap(r.small.ranking, r.large.ranking, retention))),
      random: summarize(records.map((r, i) => topOverlap(rand[i] as number[], r.large.ranking, retention))),
    })),
    evidenceRecall: retentions.map((retention) => ({
      retention,
      small: summarize(records.map((r) => cellRecall(r.small.ranking, r.evidence, retention))),
      large: summarize(records.map((r) => cellRecall(r.large.ranking, r.evidence, retention))),
      random: summarize(records.map((r, i) => cellRecall(rand[i] as number[], r.evidence, retention))),
    })),
  };
}

export interface ExitScoreCurve {
  score: string;
  /** Area between the curve and small-only accuracy, over exit fraction 0..1 (accuracy points × 1). */
  area: number;
  /** Accuracy when half of the requests exit (the nearest point at or above 50%). */
  accuracyAtHalf: number;
  points: ExitPoint[];
}

export interface ExitAnalysis {
  smallAccuracy: number;
  fallbackAccuracy: number;
  fallback: PrunedConfig;
  curves: ExitScoreCurve[];
}

export function exitCurves(records: ItemRecord[], defaults: Defaults, seed: number): ExitAnalysis {
  const fallback: PrunedConfig = { method: "sgp", layer: defaults.pruneLayer, retention: defaults.pruneRetention };
  const smallCorrect = records.map((r) => r.small.correct);
  const fallbackCorrect = records.map((r) => pruned(r, fallback).correct);
  const smallAccuracy = mean(smallCorrect.map(Number));
  const random = randomRanking(records.length, seed + 104729, 0);
  const scores: [string, number[]][] = [
    ["SEE (confidence + consistency) / 2", records.map((r) => (r.small.confidence + r.small.consistency) / 2)],
    ["confidence", records.map((r) => r.small.confidence)],
    ["consistency", records.map((r) => r.small.consistency)],
    ["random order (reference)", random],
  ];
  if (defaults.exitRule !== "average")
    scores.splice(1, 0, [`configured rule (${defaults.exitRule})`, records.map((r) => r.small.decision)]);
  return {
    smallAccuracy,
    fallbackAccuracy: mean(fallbackCorrect.map(Number)),
    fallback,
    curves: scores.map(([score, values]) => {
      const points = exitCurve(values, smallCorrect, fallbackCorrect);
      const half = points.find((p) => p.exitFraction >= 0.5) ?? (points[points.length - 1] as ExitPoint);
      return {
        score,
        area: areaAbove(points, smallAccuracy),
        accuracyAtHalf: half.accuracy,
        points: thin(points, 101),
      };
    }),
  };
}

export interface SpeedupRow {
  layer: number;
  retention: number;
  limit: number;
  /** Unpruned / sgp mean FLOPs per request, from the engine's metering. */
  flopsRatio: number;
  /** Side-by-side timings (see quality-speed.ts). */
  timing: SpeedTiming | null;
}

export function speedup(
  records: ItemRecord[],
  configs: PrunedConfig[],
  layers: number,
  timings: SpeedTiming[],
): SpeedupRow[] {
  const largeFlops = mean(records.map((r) => r.large.flops));
  return configs
    .filter((c) => c.method === "sgp")
    .map((c) => ({
      layer: c.layer,
      retention: c.retention,
      limit: speedupLimit(layers, c.layer, c.retention),
      flopsRatio: largeFlops / mean(records.map((r) => pruned(r, c).flops)),
      timing: timings.find((t) => t.layer === c.layer && t.retention === c.retention) ?? null,
    }));
}
