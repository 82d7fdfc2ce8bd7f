import { describe, expect, it } from "vitest";
import { askAboutImage, type MethodParams, MethodParamsSchema } from "../../../shared/index.js";
import { type CacheKeyParts, cacheKey } from "./cache-key.js";

const base: CacheKeyParts = {
  scope: "key",
  keyId: "k1",
  imageSha256: "a".repeat(64),
  messages: askAboutImage("What colour is the circle?"),
  method: MethodParamsSchema.parse({}),
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
    ["mode", { method: { ...base.method, mode: "large" } }],
    ["max_tokens", { method: { ...base.method, max_tokens: 9 } }],
    ["retention", { method: { ...base.method, retention: 0.3 } }],
    ["prune_layer", { method: { ...base.method, prune_layer: 2 } }],
    ["exit_threshold", { method: { ...base.method, exit_threshold: 0.5 } }],
    ["image detail low", { method: { ...base.method, detail: "low" } }],
    ["image detail high", { method: { ...base.method, detail: "high" } }],
    ["max_pixels", { method: { ...base.method, max_pixels: 200_704 } }],
    ["min_pixels", { method: { ...base.method, min_pixels: 3136 } }],
    ["small pack version", { versions: { small: "s2", large: "l1" } }],
    ["large pack version", { versions: { small: "s1", large: "l2" } }],
  ])("changes with the %s", async (_what, change) => {
    expect(await cacheKey({ ...base, ...change })).not.toBe(await cacheKey(base));
  });
  it.each<[string, Partial<MethodParams>]>([
    ["fallback (a degraded answer is never stored)", { fallback: "small" }],
    ["explain (such a request bypasses the cache)", { explain: true }],
    ["logprobs (such a request bypasses the cache)", { logprobs: 3 }],
  ])("does not change with %s", async (_what, change) => {
    expect(await cacheKey({ ...base, method: { ...base.method, ...change } })).toBe(await cacheKey(base));
  });
  it("keys a knob by its name, whatever the order the method's fields were built in", async () => {
    const { mode, ...rest } = { ...base.method, retention: 0.3 };
    const reordered = { ...rest, mode };
    expect(await cacheKey({ ...base, method: reordered })).toBe(
      await cacheKey({ ...base, method: { ...base.method, retention: 0.3 } }),
    );
    // Knobs are keyed with their names: the same value in two different knobs is two different requests.
    expect(await cacheKey({ ...base, method: { ...base.method, prune_layer: 3 } })).not.toBe(
      await cacheKey({ ...base, method: { ...base.method, max_pixels: 3 } }),
    );
  });
  it("shares entries across keys in the shared scope", async () => {
    expect(await cacheKey({ ...base, scope: "shared", keyId: "k2" })).toBe(
      await cacheKey({ ...base, scope: "shared" }),
    );
  });
});
