import { describe, expect, it } from "vitest";
import { type CacheKeyParts, cacheKey, normaliseQuestion } from "./cache-key.js";

const base: CacheKeyParts = {
  scope: "key",
  keyId: "k1",
  imageSha256: "a".repeat(64),
  question: "What colour is the circle?",
  mode: "sgl",
  maxTokens: 8,
  versions: { small: "s1", large: "l1" },
};

describe("cacheKey", () => {
  it("ignores case, Unicode form and whitespace runs in the question", async () => {
    expect(normaliseQuestion("  What  COLOUR\tis the\ncircle? ")).toBe("what colour is the circle?");
    expect(await cacheKey({ ...base, question: " what colour   is THE circle?" })).toBe(await cacheKey(base));
  });
  it.each<[string, Partial<CacheKeyParts>]>([
    ["tenant", { keyId: "k2" }],
    ["scope", { scope: "shared" }],
    ["image", { imageSha256: "b".repeat(64) }],
    ["question", { question: "what shape is left of the circle?" }],
    ["mode", { mode: "large" }],
    ["max_tokens", { maxTokens: 9 }],
    ["retention", { retention: 0.3 }],
    ["prune_layer", { pruneLayer: 2 }],
    ["exit_threshold", { exitThreshold: 0.5 }],
    ["small pack version", { versions: { small: "s2", large: "l1" } }],
    ["large pack version", { versions: { small: "s1", large: "l2" } }],
  ])("changes with the %s", async (_what, change) => {
    expect(await cacheKey({ ...base, ...change })).not.toBe(await cacheKey(base));
  });
  it("shares entries across keys in the shared scope", async () => {
    expect(await cacheKey({ ...base, scope: "shared", keyId: "k2" })).toBe(
      await cacheKey({ ...base, scope: "shared" }),
    );
  });
});
