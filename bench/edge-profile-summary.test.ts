import { describe, expect, it } from "vitest";
import { type CpuProfile, summarizeProfile } from "./edge-profile-summary.js";

const frame = (functionName: string, lineNumber = 0) => ({ functionName, url: "file:///x/index.js", lineNumber });

describe("summarizeProfile", () => {
  // root → handler → { parse, charge → sql }, and a recursive walk: walk → walk.
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame("(root)"), children: [2, 6] },
      { id: 2, callFrame: frame("handler", 9), children: [3, 4] },
      { id: 3, callFrame: frame("parse") },
      { id: 4, callFrame: frame("charge"), children: [5] },
      { id: 5, callFrame: frame("sql") },
      { id: 6, callFrame: frame("walk"), children: [7] },
      { id: 7, callFrame: frame("walk") },
    ],
    samples: [3, 3, 5, 5, 5, 4, 7, 7, 1, 2],
  };
  const summary = summarizeProfile(profile, 10);
  const share = (list: { name: string; share: number }[], name: string) =>
    list.find((f) => f.name.startsWith(`${name} `))?.share;

  it("counts each sample once for its leaf (self) and once for every distinct function above it (inclusive)", () => {
    expect(summary.samples).toBe(10);
    expect(share(summary.self, "sql")).toBe(0.3);
    expect(share(summary.self, "charge")).toBe(0.1);
    expect(share(summary.inclusive, "charge")).toBe(0.4);
    expect(share(summary.inclusive, "handler")).toBe(0.7);
    expect(share(summary.inclusive, "(root)")).toBe(1);
  });

  it("counts a recursive function once per sample", () => {
    expect(share(summary.inclusive, "walk")).toBe(0.2);
  });

  it("names a function by file and 1-based line, and ranks by share", () => {
    expect(summary.inclusive[0]?.name).toBe("(root) index.js:1");
    expect(summary.inclusive.map((f) => f.name)).toContain("handler index.js:10");
    expect(summarizeProfile(profile, 2).self).toHaveLength(2);
  });
});
