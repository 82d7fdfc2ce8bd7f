/**
 * Property-based tests of the functions' side of issue 16, over the generators the edge's properties and the
 * fuzz benchmark share (test/fuzz/): `decodeImage` refuses every bad image payload with a typed 4xx and decodes
 * every good one; the small function (real engine, embedded pair, over HTTP, signed as the edge signs) answers
 * every bad AnswerRequest with a 4xx and the shared error object, never a 5xx, and still answers good ones.
 * Bounded and seeded: the same cases on every run.
 */
import fc from "fast-check";
import { encode } from "fast-png";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeImage } from "../../gpu-worker/decode-image.js";
import { MIN_IMAGE_SIDE } from "../../shared/image-geometry.js";
import { type Conversation, type ErrorBody, MAX_ERROR_MESSAGE_CHARS, StitchError } from "../../shared/index.js";
import { answerBase, badAnswerRequest, withFreshRequestId } from "../fuzz/bad-answer-requests.js";
import { badImageBase64, type Limits, toBase64 } from "../fuzz/images.js";
import { FIXTURE_PACKS, sceneRequest, signedPost, startTestWorker, type TestWorker } from "./harness.js";

const SEED = 42;
const LIMITS: Limits = { maxBodyBytes: 1 << 20, maxImageBytes: 64 * 1024, maxPixels: 1024 * 1024 };
const decodeLimits = { maxBytes: LIMITS.maxImageBytes, maxPixels: LIMITS.maxPixels };

describe("decodeImage", () => {
  it("refuses every generated bad payload with the predicted 4xx, a bounded message and no other error", async () => {
    await fc.assert(
      fc.asyncProperty(badImageBase64(LIMITS), async (bad) => {
        const why = `${bad.kind}: ${bad.base64.slice(0, 80)} (${bad.base64.length} chars)`;
        const err = await decodeImage(bad.base64, decodeLimits).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err, why).toBeInstanceOf(StitchError);
        const known = err as StitchError;
        expect(bad.refusal.status, `${why}: ${known.status} ${known.code}`).toContain(known.status);
        if (bad.refusal.code) expect(bad.refusal.code, why).toContain(known.code);
        expect(known.param, why).toBe("image.base64");
        expect(known.message.length, why).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_CHARS);
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  it("decodes every generated good image to packed RGB of its own size, with line breaks or without", async () => {
    const image = fc
      .record({
        width: fc.integer({ min: MIN_IMAGE_SIDE, max: 48 }),
        height: fc.integer({ min: MIN_IMAGE_SIDE, max: 48 }),
        breaks: fc.boolean(),
      })
      .chain(({ width, height, breaks }) =>
        fc
          .uint8Array({ minLength: width * height * 3, maxLength: width * height * 3 })
          .map((data) => ({ width, height, breaks, png: encode({ width, height, data, channels: 3, depth: 8 }) })),
      );
    await fc.assert(
      fc.asyncProperty(image, async ({ width, height, breaks, png }) => {
        const b64 = toBase64(png);
        const decoded = await decodeImage(breaks ? (b64.match(/.{1,76}/g) ?? []).join("\r\n") : b64, decodeLimits);
        expect(decoded).toMatchObject({ width, height });
        expect(decoded.rgb.length).toBe(width * height * 3);
        expect(decoded.hash).toMatch(/^[0-9a-f]{64}$/);
      }),
      { seed: SEED, numRuns: 150 },
    );
  });
});

describe("the small function's request parsing", () => {
  let worker: TestWorker;
  beforeAll(async () => {
    worker = await startTestWorker({
      STITCH_ROLE: "both",
      STITCH_MAX_IMAGE_BYTES: String(LIMITS.maxImageBytes),
      STITCH_MAX_IMAGE_PIXELS: String(LIMITS.maxPixels),
    });
  }, 120_000);
  afterAll(async () => {
    await worker?.close();
  });

  it("refuses every generated bad AnswerRequest with a 4xx and the shared error object", {
    timeout: 120_000,
  }, async () => {
    const seen = new Map<string, number>();
    let sends = 0;
    await fc.assert(
      fc.asyncProperty(badAnswerRequest(LIMITS), async (generated) => {
        const bad = withFreshRequestId(generated, ++sends);
        seen.set(bad.category, (seen.get(bad.category) ?? 0) + 1);
        const { res } = await signedPost(worker.url, "/v1/answer", null, { raw: bad.text, requestId: bad.requestId });
        const text = await res.text();
        const why = `[${bad.category}] ${bad.defect}: ${bad.text.slice(0, 200)}\n→ ${res.status} ${text.slice(0, 300)}`;
        expect(res.status, why).toBeGreaterThanOrEqual(400);
        expect(res.status, why).toBeLessThan(500);
        expect(bad.refusal.status, why).toContain(res.status);
        const body = JSON.parse(text) as ErrorBody;
        expect(body.error, why).toMatchObject({
          message: expect.any(String),
          type: expect.any(String),
          code: expect.any(String),
        });
        expect(body.error.message.length, why).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_CHARS);
        if (bad.refusal.code) expect(bad.refusal.code, why).toContain(body.error.code);
        expect(body.error.request_id, why).toBe(res.headers.get("x-request-id"));
      }),
      { seed: SEED, numRuns: 300 },
    );
    expect([...seen.keys()].sort()).toEqual(
      ["conversation", "image", "invalid JSON", "missing field", "out of range", "wrong type"]
        .concat(["body too large", "deep nesting", "not an object", "request id"])
        .sort(),
    );
  });

  it("answers the generated requests' valid bases (so the refusals above are the defects')", {
    timeout: 120_000,
  }, async () => {
    let sends = 0;
    await fc.assert(
      fc.asyncProperty(answerBase(), async (base) => {
        const requestId = `${base.requestId}_${++sends}`;
        const body = { ...base.body, request_id: requestId };
        const { res } = await signedPost(worker.url, "/v1/answer", body, { requestId });
        expect(res.status, await res.clone().text()).toBe(200);
        expect(((await res.json()) as { request_id: string }).request_id).toBe(requestId);
      }),
      { seed: SEED, numRuns: 20 },
    );
  });
});

describe("defects the properties found", () => {
  // The embedded pair's template places its one image itself; the real families' templates render one
  // placeholder per image part, and no part or two were a 500 (internal_error) before the prompt check counted them.
  const families = ["internvl3", "qwen25vl"];
  const workers = new Map<string, TestWorker>();
  beforeAll(async () => {
    for (const family of families) {
      workers.set(
        family,
        await startTestWorker({
          STITCH_ROLE: "both",
          STITCH_PACKS_DIR: FIXTURE_PACKS,
          STITCH_SMALL_PACK: `${family}-tiny-small`,
          STITCH_LARGE_PACK: `${family}-tiny-large`,
        }),
      );
    }
  }, 180_000);
  afterAll(async () => {
    for (const w of workers.values()) await w.close();
  });

  const question = { type: "text" as const, text: "What is in this picture?" };
  const image = { type: "image" as const };
  it.each(
    families.flatMap((family) => [
      [family, "no image part", "image_missing", [question]],
      [family, "two image parts", "too_many_images", [image, image, question]],
    ]) as [string, string, string, Conversation[number]["content"]][],
  )("%s, %s → 400 %s, not a 500", async (family, _what, code, content) => {
    const worker = workers.get(family) as TestWorker;
    const { request } = sceneRequest(16, 0, { messages: [{ role: "user", content }], mode: "small", max_tokens: 1 });
    const { res } = await signedPost(worker.url, "/v1/answer", request);
    const body = (await res.json()) as ErrorBody;
    expect(res.status, JSON.stringify(body)).toBe(400);
    expect(body.error).toMatchObject({ code, param: "messages" });
  });
});
