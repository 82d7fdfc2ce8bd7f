/** Aggregates per-item evaluation records into the eval CLI's report. */
export interface EvalRecord {
  tier: string;
  correct: boolean;
  path: "small" | "large";
  latencyMs: number;
  flops: number;
  acceleratorMs: number;
}

const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Nearest-rank percentile of an unsorted list. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

function group(records: EvalRecord[]) {
  return {
    count: records.length,
    accuracy: round(mean(records.map((r) => (r.correct ? 1 : 0)))),
    mean_flops: Math.round(mean(records.map((r) => r.flops))),
    mean_accelerator_ms: round(mean(records.map((r) => r.acceleratorMs)), 3),
  };
}

export function summarise(records: EvalRecord[], tiers: readonly string[]) {
  const latencies = records.map((r) => r.latencyMs);
  return {
    ...group(records),
    per_tier: Object.fromEntries(tiers.map((t) => [t, group(records.filter((r) => r.tier === t))])),
    escalation_rate: round(mean(records.map((r) => (r.path === "large" ? 1 : 0)))),
    latency_ms: {
      mean: round(mean(latencies), 2),
      p50: round(percentile(latencies, 50), 2),
      p95: round(percentile(latencies, 95), 2),
    },
    by_path: Object.fromEntries(
      (["small", "large"] as const).map((p) => [p, group(records.filter((r) => r.path === p))]),
    ),
  };
}
