import { describe, expect, it } from "vitest";
import { breakEvenExitRate, costCurve, flopsLimitForPrompt, sglMs } from "./sgl-cost.js";
import { speedupLimit } from "./stats.js";

describe("SGL's cost against the large model alone", () => {
  // The 1B→2B figures of the issue: small 7.4 s, escalation 10.0 s, large alone 11.7 s.
  const measured = { smallMs: 7400, escalationMs: 10_000, largeMs: 11_700 };

  it("charges every request the small path and the escalated share the pruned large model", () => {
    expect(sglMs(measured, 0)).toBe(17_400);
    expect(sglMs(measured, 0.7)).toBeCloseTo(10_400, 6);
    expect(sglMs(measured, 1)).toBe(7400);
    const [none, most] = costCurve(measured, [0, 0.7]);
    expect(none?.ratio).toBeCloseTo(17_400 / 11_700, 9);
    expect(most?.ratio).toBeCloseTo(10_400 / 11_700, 9);
  });

  it("breaks even where small + (1 − e)·escalation = large", () => {
    const e = breakEvenExitRate(measured) as number;
    expect(e).toBeCloseTo(0.57, 9);
    expect(sglMs(measured, e)).toBeCloseTo(measured.largeMs, 6);
  });

  it("never breaks even when the small path alone costs the large model's time, and always when SGL wins at 0", () => {
    expect(breakEvenExitRate({ smallMs: 12_000, escalationMs: 5000, largeMs: 11_700 })).toBeNull();
    expect(breakEvenExitRate({ smallMs: 1000, escalationMs: 5000, largeMs: 11_700 })).toBe(0);
  });

  it("bounds the pruned prefill's speed-up by the FLOPs it removes", () => {
    // 20 text tokens and 256 visual, r = 0.35 → 90 visual kept; every token runs layers < K.
    expect(flopsLimitForPrompt(28, 10, 0.35, 256, 276)).toBeCloseTo((28 * 276) / (10 * 276 + 18 * 110), 12);
    expect(flopsLimitForPrompt(28, 10, 0.35, 256, 276)).toBeLessThan(speedupLimit(28, 10, 0.35));
  });
});
