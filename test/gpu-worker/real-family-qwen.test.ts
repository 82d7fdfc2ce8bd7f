/**
 * The second real family end to end through the functions over real HTTP: the tiny random-weight Qwen2.5-VL pair
 * exported from transformers (test/fixtures/packs): a photograph resized by smart_resize (its token count follows
 * its size), 3-D M-RoPE positions, the request's image detail (max_pixels) the same for small and large.
 */
import { readFileSync } from "node:fs";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { smartResizeGrid } from "../../gpu-worker/engine/image-processor/smart-resize/smart-resize.js";
import { AnswerResponseSchema, askAboutImage, type SmartResizeRecipe } from "../../shared/index.js";
import { askAboutPhoto, FIXTURE_PACKS as PACKS, readSse, signedPost, startFixturePair } from "./harness.js";

const recipe = JSON.parse(readFileSync(`${PACKS}/qwen25vl-tiny-small/manifest.json`, "utf8"))
  .image as SmartResizeRecipe;
const photo = readFileSync("test/fixtures/photos/rocket-tall-142x427.jpg");

const pair = startFixturePair("qwen25vl");

const answer = askAboutPhoto(pair, photo, "qwen");

describe("an exported Qwen2.5-VL pair behind the functions", () => {
  it("answers a photo escalated and pruned, every token of its smart_resize grid ranked", async () => {
    const { width = 0, height = 0 } = await sharp(photo).metadata();
    const { tokens, merged } = smartResizeGrid(height, width, recipe);
    const { status, body } = await answer({ mode: "sgp", retention: 0.35, prune_layer: 1, explain: true });
    expect(status, JSON.stringify(body)).toBe(200);
    const res = AnswerResponseSchema.parse(body);
    expect(res.path).toBe("large");
    expect(res.metering.small?.visual_tokens_total).toBe(tokens);
    expect(res.metering.large?.visual_tokens_kept).toBe(Math.ceil(0.35 * tokens));
    expect(res.explanation?.layout).toEqual([{ x: 0, y: 0, width: 1, height: 1, rows: merged.h, cols: merged.w }]);
    expect(res.explanation?.ranking).toHaveLength(tokens);
  });

  it("takes a lower image detail (max_pixels) for both models: fewer tokens, same in small and large", async () => {
    const { width = 0, height = 0 } = await sharp(photo).metadata();
    const maxPixels = recipe.min_pixels * 4;
    const { tokens } = smartResizeGrid(height, width, { ...recipe, max_pixels: maxPixels });
    const full = smartResizeGrid(height, width, recipe).tokens;
    expect(tokens).toBeLessThan(full);
    const { status, body } = await answer({ mode: "sgp", retention: 0.5, prune_layer: 1, max_pixels: maxPixels });
    expect(status, JSON.stringify(body)).toBe(200);
    const res = AnswerResponseSchema.parse(body);
    expect(res.metering.small?.visual_tokens_total).toBe(tokens);
    expect(res.metering.large?.visual_tokens_total).toBe(tokens);
  });

  it("returns the answering model's logprobs through both functions, the same streamed (over HTTP) or not", async () => {
    for (const mode of ["small", "sgp"] as const) {
      const body = { mode, retention: 0.35, prune_layer: 1, logprobs: 3 };
      const plain = await answer(body);
      expect(plain.status, JSON.stringify(plain.body)).toBe(200);
      const res = AnswerResponseSchema.parse(plain.body);
      expect(res.path).toBe(mode === "small" ? "small" : "large");
      // completion_tokens counts the stop token when one ended the answer; logprobs are the answer's tokens only
      const stopped = res.finish_reason === "stop" ? 1 : 0;
      expect(res.logprobs).toHaveLength((res.metering[res.path]?.completion_tokens ?? -1) - stopped);
      for (const lp of res.logprobs ?? []) expect(lp.top_logprobs).toHaveLength(3);

      const { res: streamed } = await signedPost(pair.small().url, "/v1/answer", {
        request_id: `req_qwen_${Math.random().toString(36).slice(2)}`,
        image: { base64: photo.toString("base64"), media_type: "image/jpeg" },
        messages: askAboutImage("What is in this picture?"),
        max_tokens: 4,
        stream: true,
        ...body,
      });
      const events = await readSse(streamed);
      const done = AnswerResponseSchema.parse(events.at(-1)?.data);
      const tokens = events.filter((e) => e.event === "token").map((e) => e.data as { text: string; logprobs?: [] });
      expect(tokens.flatMap((t) => t.logprobs ?? [])).toEqual(done.logprobs);
      expect(tokens.map((t) => t.text).join("")).toBe(done.answer);
      expect(done.logprobs).toEqual(res.logprobs);
    }
    const none = AnswerResponseSchema.parse((await answer({ mode: "small" })).body);
    expect(none.logprobs).toBeUndefined();
  });

  it("refuses an image detail beyond the pack's own bounds, before any model runs", async () => {
    const { status, body } = await answer({ mode: "small", max_pixels: recipe.max_pixels * 2 });
    expect(status).toBe(400);
    expect((body.error as { code: string }).code).toBe("invalid_image_detail");
  });
});
