import { describe, expect, it } from "vitest";
import { keptCount, topVisualTokens } from "./rank-visual-tokens.js";

describe("topVisualTokens", () => {
  it("keeps ceil(r·N) tokens, the most attended, in original order", () => {
    const importance = [0.1, 0.9, 0.3, 0.8, 0.2];
    expect(topVisualTokens(importance, 0.4)).toEqual([1, 3]);
    expect(topVisualTokens(importance, 0.41)).toEqual([1, 2, 3]);
    expect(topVisualTokens(importance, 1)).toEqual([0, 1, 2, 3, 4]);
  });

  it("breaks ties by position and keeps at least one token", () => {
    expect(topVisualTokens([1, 1, 1], 0.34)).toEqual([0, 1]);
    expect(keptCount(64, 0.0001)).toBe(1);
    expect(keptCount(64, 0.09)).toBe(6);
  });
});
