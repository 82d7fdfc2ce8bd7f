import { describe, expect, it } from "vitest";
import { confidenceScore, consistencyScore, decideExit, decisionScore, needsReread } from "./decide-exit.js";

describe("SEE decision score", () => {
  it("confidence is the geometric mean of the chosen tokens' probabilities", () => {
    // (0.9 · 0.4)^(1/2) = 0.6
    expect(confidenceScore([0.9, 0.4])).toBeCloseTo(0.6, 12);
    expect(confidenceScore([])).toBe(0);
  });

  it("consistency is the product of the re-read answer probabilities", () => {
    expect(consistencyScore([0.5, 0.8])).toBeCloseTo(0.4, 12);
  });

  it("combines them by the configured rule and compares with the threshold", () => {
    // confidence 0.6, consistency 0.4: average 0.5, geometric sqrt(0.24), min 0.4
    expect(decisionScore(0.6, 0.4, "average")).toBeCloseTo(0.5, 12);
    expect(decisionScore(0.6, 0.4, "geometric")).toBeCloseTo(Math.sqrt(0.24), 12);
    expect(decisionScore(0.6, 0.4, "min")).toBe(0.4);
    const policy = { threshold: 0.5, retention: 0.05, rule: "average" as const };
    expect(decideExit([0.9, 0.4], [0.5, 0.8], policy)).toMatchObject({ decision: 0.5, shouldExit: true });
    expect(decideExit([0.9, 0.4], [0.5, 0.8], policy, 0.51).shouldExit).toBe(false);
  });

  it("skips the re-read only where the rule ignores it and no caller wants every score", () => {
    expect(needsReread("confidence")).toBe(false);
    expect(needsReread("confidence", true)).toBe(true);
    for (const rule of ["average", "geometric", "min", "consistency"] as const) expect(needsReread(rule)).toBe(true);
    const confidence = { threshold: 0.6, retention: 0.05, rule: "confidence" as const };
    expect(decideExit([0.9, 0.4], null, confidence)).toMatchObject({ consistency: null, shouldExit: true });
    expect(decideExit([0.9, 0.4], null, confidence).decision).toBeCloseTo(0.6, 12);
    expect(() => decideExit([0.9, 0.4], null, { ...confidence, rule: "average" })).toThrow(/needs the re-read/);
  });
});
