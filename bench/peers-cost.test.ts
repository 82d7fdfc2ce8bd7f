import { describe, expect, it } from "vitest";
import { breakdown, fasterVerdict, type RequestParts, requestMs, withinVerdict } from "./peers-cost.js";

const stitch: RequestParts = { visionMs: 900, prefillMs: 3000, decodeMsPerToken: 150, overheadMs: 40 };
const llama: RequestParts = { visionMs: 1000, prefillMs: 2000, decodeMsPerToken: 100, overheadMs: 0 };

describe("requestMs", () => {
  it("adds vision, prefill, each decode step and overhead", () => {
    expect(requestMs(stitch, 8)).toBe(900 + 3000 + 8 * 150 + 40);
    expect(requestMs(stitch, 0)).toBe(900 + 3000 + 40);
  });
});

describe("verdicts", () => {
  it("passes within 1.5× and fails beyond it", () => {
    expect(withinVerdict(1500, 1000)).toMatchObject({ ratio: 1.5, pass: true });
    expect(withinVerdict(1501, 1000).pass).toBe(false);
  });

  it("passes only when strictly faster", () => {
    expect(fasterVerdict(999, 1000).pass).toBe(true);
    expect(fasterVerdict(1000, 1000).pass).toBe(false);
  });
});

describe("breakdown", () => {
  it("lists the parts where Stitch spends more, largest first, decode over all steps", () => {
    const gaps = breakdown(stitch, llama, 8);
    expect(gaps.map((g) => g.part)).toEqual(["prefill", "decode", "per-call overhead"]);
    expect(gaps[0]?.extraMs).toBe(1000);
    expect(gaps[1]?.extraMs).toBe(8 * 50);
    expect(gaps[2]?.extraMs).toBe(40);
  });

  it("is empty when Stitch is no slower anywhere", () => {
    const faster: RequestParts = { visionMs: 800, prefillMs: 1900, decodeMsPerToken: 90, overheadMs: 0 };
    expect(breakdown(faster, llama, 8)).toEqual([]);
  });
});
