import { describe, expect, it } from "vitest";
import { compareLatency } from "./shadow-latency-report.js";

describe("compareLatency", () => {
  it("pairs adjacent rounds whatever their order, pools each side, and passes within the target", () => {
    const c = compareLatency(
      [
        { shadowed: true, ms: [10, 11, 12] },
        { shadowed: false, ms: [10, 10, 30] },
        { shadowed: false, ms: [20, 20, 20] },
        { shadowed: true, ms: [21, 22, 40] },
      ],
      1.05,
    );
    expect(c.pairRatios).toEqual([1.1, 1.1]);
    expect(c.medianRatio).toBeCloseTo(1.1);
    expect(c.pass).toBe(false);
    expect(c.on).toEqual({ requests: 6, p50: 16.5, p95: 35.5 }); // simple-statistics' quantiles of 10 11 12 21 22 40
    expect(c.off.requests).toBe(6);
    expect(
      compareLatency(
        [
          { shadowed: false, ms: [10] },
          { shadowed: true, ms: [10.4] },
        ],
        1.05,
      ).pass,
    ).toBe(true);
  });

  it("refuses rounds that do not pair one of each side", () => {
    expect(() =>
      compareLatency(
        [
          { shadowed: true, ms: [1] },
          { shadowed: true, ms: [1] },
        ],
        1.05,
      ),
    ).toThrow(/one of each/);
    expect(() => compareLatency([{ shadowed: true, ms: [1] }], 1.05)).toThrow(/pair/);
  });
});
