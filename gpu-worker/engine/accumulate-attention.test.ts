import { describe, expect, it } from "vitest";
import { countedQueries, newAccumulator } from "./accumulate-attention.js";

describe("SGP's accumulation", () => {
  // Prompt: 2 text tokens, a visual span of 3 at positions 2..4, then 2 text tokens.
  const span = { offset: 2, length: 3 };

  it("counts the prefill queries after the span only", () => {
    expect(countedQueries([0, 1, 2, 3, 4, 5, 6], span)).toEqual([0, 0, 0, 0, 0, 1, 1]);
  });

  it("adds the visual part of each segment's per-key vector by original index, across pruning and steps", () => {
    const acc = newAccumulator(span);
    acc.add(Float32Array.from([9, 9, 1, 2, 3, 9, 9]), [0, 1, 2, 3, 4, 5, 6]);
    // a pruned segment: visual token 1 (position 3) was dropped, so its keys are a subset
    acc.add(Float32Array.from([9, 9, 10, 30, 9, 9]), [0, 1, 2, 4, 5, 6]);
    // a decode step: the prefill columns, then one generated key that is never visual
    acc.add(Float32Array.from([9, 9, 100, 300, 9, 9, 7]), [0, 1, 2, 4, 5, 6]);
    expect(Array.from(acc.received)).toEqual([111, 2, 333]);
    expect(Array.from(acc.visualRow(Float32Array.from([5, 5, 0.5, 0.25, 5, 5]), [0, 1, 2, 4, 5, 6]) ?? [])).toEqual([
      0.5, 0, 0.25,
    ]);
  });
});
