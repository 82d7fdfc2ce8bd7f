import { describe, expect, it } from "vitest";
import { percentile, summarise } from "./summarise-eval.js";

describe("summarise", () => {
  it("aggregates accuracy, escalation and compute by tier and path", () => {
    const rec = (tier: string, correct: boolean, path: "small" | "large", flops: number) => ({
      tier,
      correct,
      path,
      latencyMs: flops / 10,
      flops,
      acceleratorMs: flops / 100,
    });
    const s = summarise(
      [
        rec("read", true, "small", 100),
        rec("read", false, "large", 300),
        rec("count", true, "large", 500),
        rec("count", true, "small", 100),
      ],
      ["read", "count"],
    );
    expect(s.accuracy).toBe(0.75);
    expect(s.escalation_rate).toBe(0.5);
    expect(s.mean_flops).toBe(250);
    expect(s.per_tier.read).toMatchObject({ count: 2, accuracy: 0.5 });
    expect(s.by_path.large).toMatchObject({ count: 2, accuracy: 0.5, mean_flops: 400 });
  });

  it("takes nearest-rank percentiles", () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile([5, 1, 4, 2, 3], 95)).toBe(5);
    expect(percentile([], 50)).toBe(0);
  });
});
