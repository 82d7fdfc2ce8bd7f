/**
 * bench:shadow-latency's analysis: the client latency of early-exited requests with shadows on and off, from rounds
 * that alternate between the two (bench/shadow-latency.ts). Per side the median and p95 over every round; per pair
 * of adjacent rounds the ratio of their medians, so a drift in the machine's load over the run cancels within a
 * pair; the verdict is the median of those ratios against the target.
 */
import { median, quantileSorted } from "simple-statistics";

export interface LatencyRound {
  shadowed: boolean;
  /** Client latency of each request, ms: from sending it to the end of its body. */
  ms: number[];
}

export interface SideLatency {
  requests: number;
  p50: number;
  p95: number;
}

export interface LatencyComparison {
  on: SideLatency;
  off: SideLatency;
  /** Median(shadowed round) ÷ median(its unshadowed neighbour), one per pair of rounds. */
  pairRatios: number[];
  medianRatio: number;
  /** The most a shadow may add to the client's median latency, as a ratio. */
  target: number;
  pass: boolean;
}

function side(rounds: LatencyRound[]): SideLatency {
  const all = rounds.flatMap((r) => r.ms).sort((a, b) => a - b);
  if (all.length === 0) throw new Error("no requests on one side");
  return { requests: all.length, p50: quantileSorted(all, 0.5), p95: quantileSorted(all, 0.95) };
}

export function compareLatency(rounds: LatencyRound[], target: number): LatencyComparison {
  const pairRatios: number[] = [];
  for (let i = 0; i + 1 < rounds.length; i += 2) {
    const pair = [rounds[i], rounds[i + 1]] as [LatencyRound, LatencyRound];
    const on = pair.find((r) => r.shadowed);
    const off = pair.find((r) => !r.shadowed);
    if (!on || !off) throw new Error(`rounds ${i} and ${i + 1} are not one of each side`);
    pairRatios.push(median(on.ms) / median(off.ms));
  }
  if (pairRatios.length === 0) throw new Error("at least one pair of rounds is needed");
  const medianRatio = median(pairRatios);
  return {
    on: side(rounds.filter((r) => r.shadowed)),
    off: side(rounds.filter((r) => !r.shadowed)),
    pairRatios,
    medianRatio,
    target,
    pass: medianRatio <= target,
  };
}
