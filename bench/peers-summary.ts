/**
 * bench:peers' measurements reduced to what the report shows: medians of each side's runs for one weight type and
 * image, SGL's curve over exit rates, the verdicts and, where Stitch is slower, where its time goes. Pure.
 */
import { median } from "simple-statistics";
import {
  breakdown,
  fasterVerdict,
  type PartGap,
  type RequestParts,
  type Verdict,
  withinVerdict,
} from "./peers-cost.js";
import { sglMs } from "./sgl-cost.js";

/** One measured request of either side. */
export interface Run extends RequestParts {
  /** The request end to end as that side measured it (no model loading). */
  e2eMs: number;
  promptTokens: number;
  peakRssBytes?: number;
}

export interface Summary extends RequestParts {
  e2eMs: number;
  promptTokens: number;
  peakRssBytes?: number;
  /** Each run's end-to-end ms, in run order (the spread behind the median). */
  runs: number[];
}

export function summarise(runs: Run[]): Summary {
  if (runs.length === 0) throw new Error("no runs to summarise");
  const m = (f: (r: Run) => number) => median(runs.map(f));
  const rss = runs.map((r) => r.peakRssBytes).filter((v): v is number => v !== undefined);
  return {
    visionMs: m((r) => r.visionMs),
    prefillMs: m((r) => r.prefillMs),
    decodeMsPerToken: m((r) => r.decodeMsPerToken),
    overheadMs: m((r) => r.overheadMs),
    e2eMs: m((r) => r.e2eMs),
    promptTokens: m((r) => r.promptTokens),
    ...(rss.length > 0 && { peakRssBytes: Math.max(...rss) }),
    runs: runs.map((r) => r.e2eMs),
  };
}

export interface Comparison {
  llama: Summary;
  large?: Summary;
  pruned?: Summary;
  small?: Summary;
  /** SGL's expected latency per request at each exit rate: small + (1 − exit) × pruned large. */
  sgl: { exitRate: number; ms: number }[];
  largeVerdict?: Verdict;
  sglVerdict?: Verdict;
  /** Where Stitch's unpruned large path spends more than llama.cpp's request, largest first. */
  gaps: PartGap[];
}

export const SGL_VERDICT_EXIT = 0.7;

export function compare(
  llama: Summary,
  stitch: { large?: Summary; pruned?: Summary; small?: Summary },
  exitRates: number[],
  steps: number,
): Comparison {
  const { large, pruned, small } = stitch;
  const paths = small && pruned && { smallMs: small.e2eMs, escalationMs: pruned.e2eMs, largeMs: llama.e2eMs };
  const sgl = paths ? exitRates.map((exitRate) => ({ exitRate, ms: sglMs(paths, exitRate) })) : [];
  const atVerdict = paths ? sglMs(paths, SGL_VERDICT_EXIT) : undefined;
  return {
    llama,
    ...stitch,
    sgl,
    ...(large && { largeVerdict: withinVerdict(large.e2eMs, llama.e2eMs) }),
    ...(atVerdict !== undefined && { sglVerdict: fasterVerdict(atVerdict, llama.e2eMs) }),
    gaps: large ? breakdown(large, llama, steps) : [],
  };
}
