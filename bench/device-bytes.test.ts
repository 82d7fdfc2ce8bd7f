import { describe, expect, it } from "vitest";
import { decodeStepsBytes, type PackShape, requestBytes, residentBytes } from "./device-bytes.js";

// Small enough to count by hand: 2 layers in 2 segments, 1 KV head of 2 dims, hidden 4, vocabulary 10.
const pack: PackShape = {
  name: "hand",
  hidden: 4,
  layers: 2,
  kvHeads: 1,
  headDim: 2,
  vocab: 10,
  segments: [
    [0, 1],
    [1, 2],
  ],
  tile: { width: 2, height: 2 },
  tokensPerTile: 2,
};

describe("host↔device bytes per request", () => {
  it("counts every call's inputs and outputs, the KV cache both ways at each decode step", () => {
    // 1 tile (2 visual tokens) + 1 text token = 3 prompt tokens; 2 tokens generated = 1 decode step.
    const b = requestBytes(pack, { tiles: 1, text: 1, tokens: 2 });
    // vision: 3·2·2 pixels down (48 B) and 2 visual rows of 4 up (32 B)
    expect(b.vision).toBe(80);
    // ids 24 + embeds 48; each segment: hidden 48 + positions 24 + mask 24 + weights 12 down; KV 48 + sums 24 up,
    // then hidden 48 (first) or logits 40 (last)
    expect(b.prefill).toBe(72 + (108 + 120) + (108 + 112));
    // id 8 + embed 16; each segment: hidden 16 + position 8 + mask 32 + weight 4 + past KV 48 down; KV 64 + sums
    // 32 up, then hidden 16 or logits 40
    expect(b.decode).toBe(24 + (108 + 112) + (108 + 136));
    expect(b.total).toBe(80 + 520 + 488);
  });

  it("moves fewer bytes when the segments after K keep fewer visual tokens", () => {
    const full = requestBytes(pack, { tiles: 1, text: 1, tokens: 4 });
    const pruned = requestBytes(pack, { tiles: 1, text: 1, tokens: 4, prune: { layer: 1, retention: 0.5 } });
    expect(pruned.vision).toBe(full.vision);
    expect(pruned.prefill).toBeLessThan(full.prefill);
    expect(pruned.decode).toBeLessThan(full.decode);
  });

  it("keeps only pixels, ids, logits and the attention sums crossing when the cache stays on the device", () => {
    const b = residentBytes(pack, { tiles: 1, text: 1, tokens: 2 });
    expect(b).toEqual({ vision: 48, prefill: 24 + 12 + 40, decode: 8 + 5 * 4 + 40, total: 48 + 76 + 68 });
  });

  it("with K decode steps a run, sends each segment's past KV down and takes it back K columns longer, once per K tokens", () => {
    // 3 prompt tokens, 2 tokens generated: one run of K = 4. Down: token and position 16; up: ids 32, probabilities
    // 16; per segment: past KV of 3 positions 48 down, 7 positions 112 up, attention rows 4 × 7 × 4 = 112 up.
    const b = decodeStepsBytes(pack, { tiles: 1, text: 1, tokens: 2 }, 4);
    expect(b.decode).toBe(16 + 32 + 16 + 2 * (48 + 112 + 112));
    expect(b.prefill).toBe(requestBytes(pack, { tiles: 1, text: 1, tokens: 2 }).prefill);
    // 9 tokens: the first from the prefill, then 8 = two runs of 4 (the second run's pasts 4 columns longer)
    const two = decodeStepsBytes(pack, { tiles: 1, text: 1, tokens: 9 }, 4);
    const run = (past: number) => 64 + 2 * (48 * (past / 3) + 16 * (past + 4) + 16 * (past + 4));
    expect(two.decode).toBe(run(3) + run(7));
    expect(two.decode).toBeLessThan(requestBytes(pack, { tiles: 1, text: 1, tokens: 9 }).decode);
  });
});
