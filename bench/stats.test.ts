import { describe, expect, it } from "vitest";
import { sglOutcome } from "./quality-analyses.js";
import type { ItemRecord } from "./quality-run.js";
import {
  areaAbove,
  cellRecall,
  ci95,
  exitCurve,
  randomRanking,
  spearman,
  speedupLimit,
  summarize,
  thin,
  topOverlap,
} from "./stats.js";

describe("summarize", () => {
  it("gives mean and quartiles, leaving NaN out", () => {
    const s = summarize([4, Number.NaN, 1, 3, 2]);
    expect(s.n).toBe(4);
    expect(s.mean).toBe(2.5);
    expect(s.median).toBe(2.5);
    expect(s.q1).toBeLessThanOrEqual(s.median);
    expect(s.q3).toBeGreaterThanOrEqual(s.median);
  });

  it("is all NaN on no data", () => {
    expect(summarize([]).mean).toBeNaN();
  });
});

describe("spearman", () => {
  it("is 1 for the same order, -1 for the reverse, whatever the scale", () => {
    expect(spearman([1, 2, 3, 4], [10, 20, 300, 4000])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
  });

  it("uses mid-ranks for ties (scipy's spearmanr([1,2,2,3],[1,3,2,4]) = 0.9486833)", () => {
    expect(spearman([1, 2, 2, 3], [1, 3, 2, 4])).toBeCloseTo(0.9486833, 6);
  });

  it("is NaN for a constant ranking and refuses unequal lengths", () => {
    expect(spearman([1, 1, 1], [1, 2, 3])).toBeNaN();
    expect(() => spearman([1, 2], [1, 2, 3])).toThrow(/length/);
  });
});

describe("top-k overlap and cell recall", () => {
  it("compares the engine's top ceil(r·N) selections", () => {
    const a = [9, 8, 7, 0, 0, 0, 0, 0, 0, 0];
    const b = [9, 0, 8, 7, 0, 0, 0, 0, 0, 0];
    expect(topOverlap(a, a, 0.3)).toBe(1);
    expect(topOverlap(a, b, 0.3)).toBeCloseTo(2 / 3, 12);
    expect(topOverlap(a, b, 0.1)).toBe(1);
  });

  it("counts evidence cells kept", () => {
    expect(cellRecall([5, 4, 3, 2, 1], [0, 4], 0.4)).toBe(0.5);
    expect(cellRecall([5, 4, 3, 2, 1], [], 0.4)).toBeNaN();
  });
});

describe("randomRanking", () => {
  it("is a reproducible permutation that differs between streams", () => {
    const r = randomRanking(64, 7, 1);
    expect([...r].sort((x, y) => x - y)).toEqual([...Array(64).keys()].map((i) => i + 1));
    expect(randomRanking(64, 7, 1)).toEqual(r);
    expect(randomRanking(64, 7, 2)).not.toEqual(r);
  });

  it("puts a given token first about 1/N of the time", () => {
    let hits = 0;
    for (let s = 0; s < 2000; s++) hits += topOverlap(randomRanking(64, 1, s), [1, ...Array(63).fill(0)], 1 / 64);
    expect(hits / 2000).toBeGreaterThan(0.005);
    expect(hits / 2000).toBeLessThan(0.03);
  });
});

describe("exitCurve and areaAbove", () => {
  // Scores 0.9 > 0.8 = 0.8 > 0.1; small right on the first three, fallback right on the last two.
  const scores = [0.8, 0.9, 0.1, 0.8];
  const small = [true, true, false, true];
  const fallback = [false, false, true, true];

  it("walks from all-escalate to all-exit, tied scores exiting together", () => {
    const curve = exitCurve(scores, small, fallback);
    expect(curve.map((p) => p.exitFraction)).toEqual([0, 0.25, 0.75, 1]);
    expect(curve.map((p) => p.accuracy)).toEqual([0.5, 0.75, 1, 0.75]);
    expect(curve.map((p) => p.threshold)).toEqual([Number.POSITIVE_INFINITY, 0.9, 0.8, 0.1]);
  });

  it("integrates the gap to a level by trapezoids", () => {
    const curve = exitCurve(scores, small, fallback);
    // (0.625·0.25 + 0.875·0.5 + 0.875·0.25) - 0.75 = 0.8125 - 0.75
    expect(areaAbove(curve, 0.75)).toBeCloseTo(0.0625, 12);
    expect(
      areaAbove(
        [
          { exitFraction: 0, accuracy: 0.5 },
          { exitFraction: 1, accuracy: 0.5 },
        ],
        0.75,
      ),
    ).toBeCloseTo(-0.25, 12);
  });

  it("thins a long curve but keeps both ends", () => {
    const curve = Array.from({ length: 1001 }, (_, i) => ({ exitFraction: i / 1000, accuracy: 0 }));
    const t = thin(curve, 11);
    expect(t.length).toBeLessThanOrEqual(12);
    expect(t[0]).toBe(curve[0]);
    expect(t[t.length - 1]).toBe(curve[1000]);
  });
});

describe("speedupLimit and ci95", () => {
  it("follows L / (K + (L-K)·r)", () => {
    expect(speedupLimit(4, 1, 1)).toBe(1);
    expect(speedupLimit(4, 1, 0.09)).toBeCloseTo(4 / 1.27, 12);
    expect(speedupLimit(48, 2, 0)).toBe(24);
  });

  it("gives the normal-approximation interval", () => {
    expect(ci95(0.5, 100)).toBeCloseTo(0.098, 3);
  });
});

describe("sgl from cached per-item results", () => {
  const outcome = (correct: boolean, flops: number) => ({
    answer: "",
    correct,
    flops,
    acceleratorMs: flops / 10,
    wallMs: flops / 5,
    kept: 64,
  });
  const record = (decision: number, smallRight: boolean, largeRight: boolean): ItemRecord => ({
    index: 0,
    tier: "read",
    evidence: [],
    small: { ...outcome(smallRight, 10), ranking: [], confidence: decision, consistency: decision, decision },
    large: { ...outcome(largeRight, 100), ranking: [] },
    pruned: { "sgp@1@0.35": { ...outcome(largeRight, 60), kept: 23 } },
  });
  const fallback = { method: "sgp", layer: 1, retention: 0.35 } as const;

  it("exits with the small answer and cost, or adds the sgp run's cost", () => {
    const exits = sglOutcome(record(0.9, true, false), 0.5, fallback);
    expect(exits).toMatchObject({ correct: true, flops: 10, escalated: false });
    const escalates = sglOutcome(record(0.1, false, true), 0.5, fallback);
    expect(escalates).toMatchObject({ correct: true, flops: 70, acceleratorMs: 7, escalated: true, kept: 23 });
  });

  it("agrees with the exit curve at the same threshold", () => {
    const records = [
      record(0.9, true, false),
      record(0.6, false, true),
      record(0.2, true, true),
      record(0.1, false, false),
    ];
    const curve = exitCurve(
      records.map((r) => r.small.decision),
      records.map((r) => r.small.correct),
      records.map((r) => r.pruned["sgp@1@0.35"]?.correct ?? false),
    );
    for (const p of curve.slice(1)) {
      const right = records.filter((r) => sglOutcome(r, p.threshold, fallback).correct).length;
      expect(right / records.length).toBeCloseTo(p.accuracy, 12);
    }
  });
});
