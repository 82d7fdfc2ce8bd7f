import { describe, expect, it } from "vitest";
import { askAboutImage } from "../../../shared/index.js";
import { type CacheKeyParts, cacheKey } from "./cache-key.js";

const base: CacheKeyParts = {
  scope: "key",
  keyId: "k1",
  imageSha256: "a".repeat(64),
  messages: askAboutImage("What colour is the circle?"),
  mode: "sgl",
  maxTokens: 8,
  detail: "auto",
  versions: { small: "s1", large: "l1" },
};

describe("cacheKey", () => {
  it("keys the texts exactly as the models read them: Unicode form, whitespace and case all count", async () => {
    const twins = [
      "Ｗｈａｔ colour is the circle?", // full-width: NFKC would fold it into the ASCII question
      " What colour   is the\ncircle?",
      "what colour is the circle?",
    ];
    for (const text of twins) {
      expect(await cacheKey({ ...base, messages: askAboutImage(text) })).not.toBe(await cacheKey(base));
    }
    expect(await cacheKey({ ...base, messages: askAboutImage("What colour is the circle?") })).toBe(
      await cacheKey(base),
    );
  });
  it.each<[string, Partial<CacheKeyParts>]>([
    ["tenant", { keyId: "k2" }],
    ["scope", { scope: "shared" }],
    ["image", { imageSha256: "b".repeat(64) }],
    ["question", { messages: askAboutImage("what shape is left of the circle?") }],
    [
      "system prompt",
      { messages: [{ role: "system", content: [{ type: "text", text: "Be brief." }] }, ...base.messages] },
    ],
    [
      "earlier turn",
      { messages: [{ role: "assistant", content: [{ type: "text", text: "Hello." }] }, ...base.messages] },
    ],
    [
      "image position",
      {
        messages: [
          { role: "user", content: [{ type: "text", text: "What colour is the circle?" }, { type: "image" }] },
        ],
      },
    ],
    ["mode", { mode: "large" }],
    ["max_tokens", { maxTokens: 9 }],
    ["retention", { retention: 0.3 }],
    ["prune_layer", { pruneLayer: 2 }],
    ["exit_threshold", { exitThreshold: 0.5 }],
    ["image detail low", { detail: "low" }],
    ["image detail high", { detail: "high" }],
    ["max_pixels", { pixels: { max: 200_704 } }],
    ["min_pixels", { pixels: { min: 3136 } }],
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
