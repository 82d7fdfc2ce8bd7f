import { describe, expect, it } from "vitest";
import { FLAT_MIB_PER_MIN, memoryVerdict, type Sample } from "./soak-memory.js";

/** Samples every 5 s for `minutes`, from `f(t in minutes)`. */
const series = (minutes: number, f: (m: number) => number, pid = 1): Sample[] =>
  Array.from({ length: minutes * 12 + 1 }, (_, i) => ({ t: i * 5, pid, rssMiB: f((i * 5) / 60) }));

describe("memoryVerdict", () => {
  it("fits the second half only: a warm-up climb followed by a plateau is flat", () => {
    const v = memoryVerdict(
      "p",
      series(4, (m) => (m < 1 ? 100 + 80 * m : 180)),
      120,
    );
    expect(v.slopeMiBPerMin).toBeCloseTo(0, 6);
    expect([v.flat, v.startMiB, v.endMiB, v.fitFromSeconds]).toEqual([true, 100, 180, 120]);
  });

  it("calls a steady climb over the larger of 1 %/min and 1 MiB/min not flat", () => {
    const climbing = memoryVerdict(
      "p",
      series(4, (m) => 200 + 3 * m),
      120,
    );
    expect(climbing.slopeMiBPerMin).toBeCloseTo(3, 6);
    expect(climbing.thresholdMiBPerMin).toBeCloseTo(0.01 * (200 + 3 * 3), 6);
    expect(climbing.flat).toBe(false);
    const small = memoryVerdict(
      "p",
      series(4, (m) => 50 + 0.9 * m),
      120,
    );
    expect([small.thresholdMiBPerMin, small.flat]).toEqual([FLAT_MIB_PER_MIN, true]);
  });

  it("a sawtooth around a level is flat", () => {
    const v = memoryVerdict(
      "p",
      series(4, (m) => 300 + (Math.round(m * 12) % 6) * 4),
      120,
    );
    expect(Math.abs(v.slopeMiBPerMin)).toBeLessThan(v.thresholdMiBPerMin);
    expect(v.flat).toBe(true);
  });

  it("never calls a replaced process flat, and says so", () => {
    const samples = [...series(2, () => 100, 1), ...series(2, () => 100, 2).map((s) => ({ ...s, t: s.t + 125 }))];
    const v = memoryVerdict("p", samples, 120);
    expect(v.flat).toBe(false);
    expect(v.pids).toEqual([1, 2]);
    expect(v.note).toContain("pid changed 1 → 2");
  });
});
