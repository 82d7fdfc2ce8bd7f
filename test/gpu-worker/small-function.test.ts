/**
 * The small function over real HTTP, with a real large function behind it
 * (separate processes' worth of apps on two ports), the real engine and the
 * embedded packs: modes, metering, streaming, signing, request ids, bad input.
 */

import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AnswerResponseSchema, askAboutImage, type ErrorBody, MODES } from "../../shared/index.js";
import { readSse, sceneRequest, signedHead, signedPost, startTestWorker, type TestWorker } from "./harness.js";

let large: TestWorker;
let small: TestWorker;

beforeAll(async () => {
  large = await startTestWorker({ STITCH_ROLE: "large" });
  small = await startTestWorker({
    STITCH_ROLE: "small",
    STITCH_LARGE_URL: large.url,
    STITCH_MAX_IMAGE_BYTES: String(256 * 1024),
    STITCH_MAX_IMAGE_PIXELS: String(1024 * 1024),
  });
});
afterAll(async () => {
  await small?.close();
  await large?.close();
});

const answer = (body: unknown, options?: Parameters<typeof signedPost>[3]) =>
  signedPost(small.url, "/v1/answer", body, options);

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as ErrorBody;
  expect(body.error).toMatchObject({ code, type: expect.any(String), message: expect.any(String) });
  expect(body.error.request_id).toBe(res.headers.get("x-request-id"));
  return body;
}

describe("answers", () => {
  it.each(MODES)("mode %s answers with the path, exit scores and metering the mode implies", async (mode) => {
    const { request } = sceneRequest(11, 3, { mode, exit_threshold: mode === "sgl" ? 0 : undefined });
    const { res } = await answer(request);
    expect(res.status).toBe(200);
    const body = AnswerResponseSchema.parse(await res.json());
    expect(body).toMatchObject({ request_id: request.request_id, mode, degraded: false });
    expect(body.models.small).toMatch(/^stitch-scenes-small@/);
    expect(body.models.large).toMatch(/^stitch-scenes-large@/);
    const smallRan = mode !== "large" && mode !== "fastv";
    // sgl with threshold 0 always exits; small never escalates; the others always reach the large model.
    const escalated = mode !== "small" && mode !== "sgl";
    expect(body.path).toBe(escalated ? "large" : "small");
    expect(body.exit !== null).toBe(smallRan);
    expect(body.metering.small !== null).toBe(smallRan);
    expect(body.metering.large !== null).toBe(escalated);
    if (body.metering.large) {
      expect(body.metering.large.visual_tokens_total).toBe(64);
      const kept = body.metering.large.visual_tokens_kept;
      if (mode === "large") expect(kept).toBe(64);
      else expect(kept).toBeLessThan(64);
      expect(body.metering.large.flops).toBeGreaterThan(0);
      expect(body.metering.large.gpu_class).toBe("cpu");
    }
  });

  it("sgl escalates when the score misses the threshold, pruned by the small ranking", async () => {
    const { request } = sceneRequest(11, 4, { mode: "sgl", exit_threshold: 1, retention: 0.25, prune_layer: 2 });
    const body = AnswerResponseSchema.parse(await (await answer(request)).res.json());
    expect(body.path).toBe("large");
    expect(body.exit?.threshold).toBe(1);
    expect(body.metering.large?.visual_tokens_kept).toBe(16);
  });

  it("streams an escalated answer token by token and ends with the full response", async () => {
    const { request } = sceneRequest(11, 5, { mode: "sgp", stream: true, max_tokens: 4 });
    const { res } = await answer(request);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = await readSse(res);
    const done = events.at(-1);
    expect(done?.event).toBe("done");
    const body = AnswerResponseSchema.parse(done?.data);
    const text = events
      .filter((e) => e.event === "token")
      .map((e) => (e.data as { text: string }).text)
      .join("");
    expect(text).toBe(body.answer); // exactly: a stream that lost or gained a space is a defect
    expect(events.slice(0, -1).every((e) => e.event === "token")).toBe(true);
  });

  it("streams a small exit once decided", async () => {
    const { request } = sceneRequest(11, 6, { mode: "small", stream: true });
    const events = await readSse((await answer(request)).res);
    expect(events.map((e) => e.event)).toEqual(["token", "done"]);
    const [token, done] = events as unknown as [{ data: { text: string } }, { data: { answer: string } }];
    expect(token.data.text).toBe(done.data.answer);
  });

  it("a streamed request that fails before any token gets a plain error status", async () => {
    const { request } = sceneRequest(11, 7, { stream: true, messages: askAboutImage("") });
    await expectError((await answer(request)).res, 400, "empty_question");
  });

  it("a repeat image skips the vision encoder (cache hit, shown in /metrics)", async () => {
    const { request } = sceneRequest(12, 0, { mode: "small" });
    const first = AnswerResponseSchema.parse(await (await answer(request)).res.json());
    const again = AnswerResponseSchema.parse(await (await answer({ ...request, request_id: "req_again" })).res.json());
    expect(again.answer).toBe(first.answer);
    expect(again.metering.small?.flops).toBeLessThan(first.metering.small?.flops ?? 0);
    const metrics = await (await fetch(`${small.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/stitch_vision_cache_hits_total\{model="small"\} [1-9]/);
    expect(metrics).toMatch(/stitch_http_requests_total\{path="\/v1\/answer",method="POST",status="200"\} [1-9]/);
    expect(metrics).toMatch(/stitch_answers_total\{mode="small",path="small",degraded="false"\} [1-9]/);
    expect(metrics).toContain("stitch_queue_depth 0");
    expect(metrics).toContain("stitch_http_request_duration_seconds_bucket");
  });
});

describe("request ids", () => {
  it("echoes the id, uses it in the body and logs, and forwards it to the large function", async () => {
    const { request } = sceneRequest(13, 0, { mode: "large", request_id: "req_trace_me_42" });
    const { res } = await answer(request);
    expect(res.headers.get("x-request-id")).toBe("req_trace_me_42");
    expect(((await res.json()) as { request_id: string }).request_id).toBe("req_trace_me_42");
    const lines = (w: TestWorker) => w.logs.filter((l) => l.request_id === "req_trace_me_42");
    expect(lines(small).some((l) => l.msg === "request" && l.status === 200)).toBe(true);
    expect(lines(large).some((l) => l.msg === "request" && l.path === "/v1/escalate" && l.status === 200)).toBe(true);
  });

  it("puts the id on errors too, and refuses a body naming another request", async () => {
    const { request } = sceneRequest(13, 1);
    const { res } = await answer(request, { requestId: "req_other" });
    const body = await expectError(res, 400, "request_id_mismatch");
    expect(body.error.request_id).toBe("req_other");
  });

  it("makes one up for unsigned probes", async () => {
    const res = await fetch(`${small.url}/healthz`);
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
  });
});

describe("signing", () => {
  it("unsigned → 401 signature_missing", async () => {
    await expectError((await answer(sceneRequest(14, 0).request, { unsigned: true })).res, 401, "signature_missing");
  });

  it("wrong secret → 401 signature_invalid", async () => {
    await expectError((await answer(sceneRequest(14, 0).request, { secret: "nope" })).res, 401, "signature_invalid");
  });

  it("a signed body altered in transit → 401 signature_body_mismatch", async () => {
    const { request } = sceneRequest(14, 1);
    const headers = await signedHead(request.request_id, new TextEncoder().encode(JSON.stringify(request)));
    const tampered = JSON.stringify({ ...request, messages: askAboutImage("what colour is the circle ?") });
    const res = await fetch(`${small.url}/v1/answer`, { method: "POST", headers, body: tampered });
    await expectError(res, 401, "signature_body_mismatch");
  });

  it("expired → 401 signature_expired", async () => {
    const stale = Date.now() - 2 * 60_000;
    await expectError((await answer(sceneRequest(14, 0).request, { now: stale })).res, 401, "signature_expired");
  });

  it("replayed → 401 signature_replayed", async () => {
    const { request } = sceneRequest(14, 2, { mode: "small" });
    const { res, headers } = await answer(request);
    expect(res.status).toBe(200);
    const replay = await fetch(`${small.url}/v1/answer`, { method: "POST", headers, body: JSON.stringify(request) });
    await expectError(replay, 401, "signature_replayed");
  });

  it("the large function refuses unsigned calls as well", async () => {
    const res = await fetch(`${large.url}/v1/escalate`, { method: "POST", body: "{}" });
    await expectError(res, 401, "signature_missing");
  });
});

describe("bad input → 4xx with the shared error object", () => {
  const png = () => sceneRequest(15, 0).png;
  const withImage = (base64: string) => sceneRequest(15, 0, { image: { base64 } }).request;

  it.each([
    ["not JSON", { raw: "{nope" }, 400, "invalid_json"],
    ["missing question", { body: { request_id: "r1", image: { base64: "AAAA" } } }, 400, "invalid_type"],
    ["unknown mode", { body: sceneRequest(15, 0, { mode: "turbo" as "sgl" }).request }, 400, "invalid_value"],
    ["max_tokens 0", { body: sceneRequest(15, 0, { max_tokens: 0 }).request }, 400, "parameter_out_of_range"],
    ["max_tokens 65", { body: sceneRequest(15, 0, { max_tokens: 65 }).request }, 400, "parameter_out_of_range"],
    ["retention 0", { body: sceneRequest(15, 0, { retention: 0 }).request }, 400, "parameter_out_of_range"],
    ["retention 1.5", { body: sceneRequest(15, 0, { retention: 1.5 }).request }, 400, "parameter_out_of_range"],
    ["exit_threshold 2", { body: sceneRequest(15, 0, { exit_threshold: 2 }).request }, 400, "parameter_out_of_range"],
    [
      "prune_layer 3 (not a split)",
      { body: sceneRequest(15, 0, { prune_layer: 3 }).request },
      400,
      "invalid_prune_layer",
    ],
    [
      "empty question",
      { body: sceneRequest(15, 0, { messages: askAboutImage("   ") }).request },
      400,
      "empty_question",
    ],
    [
      "question over the token limit",
      { body: sceneRequest(15, 0, { messages: askAboutImage(Array(40).fill("what").join(" ")) }).request },
      400,
      "question_too_long",
    ],
    [
      "unknown words",
      { body: sceneRequest(15, 0, { messages: askAboutImage("what is the meaning of life") }).request },
      400,
      "unknown_words",
    ],
    ["bad base64", { body: withImage("@@not base64@@") }, 400, "invalid_image_base64"],
    [
      "garbage bytes",
      { body: withImage(Buffer.from("plain text, not an image").toString("base64")) },
      415,
      "unsupported_image_type",
    ],
    [
      "BMP",
      { body: withImage(Buffer.concat([Buffer.from("BM"), Buffer.alloc(64)]).toString("base64")) },
      415,
      "unsupported_image_type",
    ],
  ] as const)("%s → %i %s", async (_name, input, status, code) => {
    const body = "body" in input ? input.body : {};
    const raw = "raw" in input ? input.raw : undefined;
    await expectError(
      (await answer(body, { raw, requestId: (body as { request_id?: string }).request_id })).res,
      status,
      code,
    );
  });

  it("truncated PNG → 400 image_decode_failed", async () => {
    const bytes = png();
    const { res } = await answer(withImage(bytes.subarray(0, bytes.length >> 1).toString("base64")));
    await expectError(res, 400, "image_decode_failed");
  });

  it("too many pixels → 400 image_too_many_pixels", async () => {
    const big = await sharp({ create: { width: 1100, height: 1000, channels: 3, background: "#fff" } })
      .png()
      .toBuffer();
    await expectError((await answer(withImage(big.toString("base64")))).res, 400, "image_too_many_pixels");
  });

  it("too many bytes → 413 image_too_large", async () => {
    const noisy = await sharp(
      Buffer.from(Array.from({ length: 300 * 300 * 3 }, () => Math.floor(Math.random() * 256))),
      {
        raw: { width: 300, height: 300, channels: 3 },
      },
    )
      .png()
      .toBuffer();
    expect(noisy.length).toBeGreaterThan(256 * 1024);
    await expectError((await answer(withImage(noisy.toString("base64")))).res, 413, "image_too_large");
  });

  it("a body far over the limit → 413 body_too_large, before it is hashed", async () => {
    const huge = "A".repeat(2 * 1024 * 1024);
    await expectError((await answer(withImage(huge))).res, 413, "body_too_large");
  });

  it("unknown route → 404", async () => {
    await expectError(await fetch(`${small.url}/v1/nope`), 404, "route_not_found");
  });
});

describe("health", () => {
  it("/healthz and /readyz answer 200 once ready", async () => {
    expect((await fetch(`${small.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${small.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${large.url}/readyz`)).status).toBe(200);
  });
});
