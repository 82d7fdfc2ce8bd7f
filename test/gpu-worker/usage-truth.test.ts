/**
 * What the functions meter is what the models read, checked against transformers: the tiny exported pairs of both
 * real families, asked about the image and conversation their conformance fixture recorded (fixture.json: the prompt
 * ids transformers' processor and chat template made, with the image's visual span). prompt_tokens is the length of
 * those ids (text and visual tokens), visual_tokens_total the span's; the same image asked again is served by each
 * function's vision cache, and the metering says so (visual_tokens_cached).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { AnswerResponseSchema, type Conversation } from "../../shared/index.js";
import { FIXTURE_PACKS, signedPost, startFixturePair } from "./harness.js";

interface Case {
  name: string;
  messages: Conversation;
  input_ids: number[];
  visual_span: { offset: number; length: number };
  /** tiles packs: the processor's tiles; a one-tile case's only tile is an image the processor leaves as one tile. */
  tiles_png_base64?: string[];
  /** smart_resize packs: the processor's resized image, which smart_resize leaves at its size. */
  resized_png_base64?: string;
}

/** The fixture's first case: an image that the processor maps onto itself, so its tokens are the fixture's. */
function firstCase(pack: string): Case & { png: string } {
  const fixture = JSON.parse(readFileSync(`${FIXTURE_PACKS}/${pack}/fixture.json`, "utf8")) as { cases: Case[] };
  const c = fixture.cases[0] as Case;
  const png = c.resized_png_base64 ?? (c.tiles_png_base64?.length === 1 ? c.tiles_png_base64[0] : undefined);
  if (!png) throw new Error(`${pack}: the first case is not a single image`);
  return { ...c, png };
}

describe.each(["internvl3", "qwen25vl"])("%s: usage as the models read it", (family) => {
  const pair = startFixturePair(family);
  const small = firstCase(`${family}-tiny-small`);
  const large = firstCase(`${family}-tiny-large`);

  const answer = async (partition: string) => {
    const { res } = await signedPost(pair.small().url, "/v1/answer", {
      request_id: `req_usage_${Math.random().toString(36).slice(2)}`,
      cache_partition: partition,
      image: { base64: small.png, media_type: "image/png" },
      messages: small.messages,
      mode: "sgp",
      retention: 0.5,
      prune_layer: 1,
      max_tokens: 2,
    });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    return AnswerResponseSchema.parse(JSON.parse(text));
  };

  it("prompt_tokens = transformers' prompt ids (text + visual tokens), in both models; the repeat is vision-cached", async () => {
    expect(large.png).toBe(small.png);
    const partition = `usage-${family}-${Date.now()}`;
    const first = await answer(partition);
    for (const [metering, c] of [
      [first.metering.small, small],
      [first.metering.large, large],
    ] as const) {
      expect(metering?.prompt_tokens).toBe(c.input_ids.length);
      expect(metering?.visual_tokens_total).toBe(c.visual_span.length);
      expect(metering?.visual_tokens_cached).toBe(0);
    }
    const again = await answer(partition);
    expect(again.metering.small?.visual_tokens_cached).toBe(small.visual_span.length);
    expect(again.metering.large?.visual_tokens_cached).toBe(large.visual_span.length);
    expect(again.metering.large?.prompt_tokens).toBe(large.input_ids.length);
  });
});
