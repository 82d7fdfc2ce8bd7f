/**
 * Cost follows occupancy (issue 26, item 3), against real functions over HTTP (the small one escalating to the large
 * one): the degenerate 1 × 16,777,216 PNG is refused from its header with a 400 and never answered or billed; a
 * large legitimate image's metered accelerator time includes decoding it, in the small function and, for a
 * large-only mode, in both (the small function's intake has no small metering of its own to carry it).
 */
import { randomBytes } from "node:crypto";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import { decodeImage } from "../../gpu-worker/decode-image.js";
import { imageProcessor } from "../../gpu-worker/engine/image-processor/registry.js";
import { readPackManifest } from "../../gpu-worker/engine/model-pack.js";
import { AnswerResponseSchema, type ErrorBody } from "../../shared/index.js";
import { greyPng } from "../fuzz/images.js";
import { sceneRequest, signedPost, startPair } from "./harness.js";

const pair = startPair();

const answer = (body: unknown) => signedPost(pair.small().url, "/v1/answer", body);

async function answersCounted(): Promise<number> {
  const text = await (await fetch(`${pair.small().metricsUrl}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith("stitch_answers_total"))
    .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
}

describe("degenerate images", () => {
  it("the 1 × 16,777,216 PNG gets 400 image_aspect_ratio at the function, unanswered and unbilled", async () => {
    const thin = Buffer.from(await greyPng(1, 16_777_216));
    const before = await answersCounted();
    const { request } = sceneRequest(5, 0, { image: { base64: thin.toString("base64"), media_type: "image/png" } });
    const { res } = await answer(request);
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body).not.toHaveProperty("metering");
    expect(body.error).toMatchObject({
      code: "image_aspect_ratio",
      param: "image.base64",
      type: "invalid_request_error",
    });
    expect(await answersCounted()).toBe(before);
  });
});

describe("metered accelerator time includes decoding", () => {
  // Noise does not compress: a 1024² PNG of it is 3 MB, and decoding it is most of what the request costs.
  let png: Buffer;
  let decodeMs: number;

  beforeAll(async () => {
    const side = 1024;
    png = await sharp(randomBytes(side * side * 3), { raw: { width: side, height: side, channels: 3 } })
      .png()
      .toBuffer();
    // Decoded the way the function decodes it (same decoder, same limits, the small pack's size), at its quickest.
    const manifest = await readPackManifest(pair.small().config.smallPackDir);
    const limits = { maxBytes: 4 << 20, maxPixels: 4096 ** 2, resizeTo: imageProcessor(manifest.image).decodeSize };
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await decodeImage(png.toString("base64"), limits);
      times.push(performance.now() - started);
    }
    decodeMs = Math.min(...times);
  });

  const withImage = (index: number, mode: "small" | "large") =>
    sceneRequest(6, index, { mode, image: { base64: png.toString("base64"), media_type: "image/png" } }).request;

  it("small path: the small function's accelerator_ms covers its decode", async () => {
    const { res } = await answer(withImage(0, "small"));
    expect(res.status).toBe(200);
    const body = AnswerResponseSchema.parse(await res.json());
    expect(body.metering.small?.accelerator_ms).toBeGreaterThanOrEqual(decodeMs);
  });

  it("large-only mode: the large metering covers both functions' decodes", async () => {
    const { res } = await answer(withImage(1, "large"));
    expect(res.status).toBe(200);
    const body = AnswerResponseSchema.parse(await res.json());
    expect(body.metering.small).toBeNull();
    expect(body.metering.large?.accelerator_ms).toBeGreaterThanOrEqual(2 * decodeMs);
  });
});
