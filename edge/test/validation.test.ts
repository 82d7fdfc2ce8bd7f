/** Every bad request gets a 4xx with the OpenAI error object, reaches no GPU and bills nothing. */
import { beforeAll, describe, expect, it } from "vitest";
import { ask, chatBody, createKey, dataUrl, type EdgeResponse, ledgerRows, stubCalls, uniquePng } from "./helpers.js";

let key: { id: string; key: string };
beforeAll(async () => {
  key = await createKey();
});

async function expectRefused(res: EdgeResponse, status: number, code: string, param?: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.json.error).toMatchObject({ code, message: expect.any(String), type: expect.any(String) });
  if (param !== undefined) expect(res.json.error.param).toBe(param);
  expect(res.json.error.request_id).toBe(res.headers.get("x-request-id"));
  expect(await stubCalls(res.headers.get("x-request-id") ?? "")).toBe(0);
  expect(await ledgerRows(key.id)).toHaveLength(0);
}

const image = () => ({ type: "image_url", image_url: { url: dataUrl(uniquePng()) } });
const userMessage = (...content: unknown[]) => ({ model: "stitch-sgl", messages: [{ role: "user", content }] });

describe("request validation", () => {
  it("malformed JSON", async () => {
    await expectRefused(await ask(key.key, '{"model": "stitch-sgl", "messages": ['), 400, "invalid_json");
    await expectRefused(await ask(key.key, ""), 400, "invalid_json");
  });

  it("wrong types", async () => {
    await expectRefused(await ask(key.key, { ...chatBody(), messages: "hello" }), 400, "invalid_type", "messages");
    await expectRefused(await ask(key.key, chatBody({ max_tokens: "8" })), 400, "invalid_type", "max_tokens");
    await expectRefused(await ask(key.key, chatBody({ stream: "yes" })), 400, "invalid_type", "stream");
    await expectRefused(await ask(key.key, [1, 2]), 400, "invalid_type");
    await expectRefused(await ask(key.key, userMessage({ type: "audio", audio: {} })), 400, "invalid_type");
  });

  it("unknown parameters", async () => {
    await expectRefused(await ask(key.key, chatBody({ temprature: 0 })), 400, "unknown_parameter");
    await expectRefused(
      await ask(key.key, chatBody({ stitch: { retension: 0.5 } })),
      400,
      "unknown_parameter",
      "stitch",
    );
  });

  it("no image, no question, no user message", async () => {
    await expectRefused(await ask(key.key, userMessage({ type: "text", text: "what colour?" })), 400, "image_missing");
    await expectRefused(
      await ask(key.key, { messages: [{ role: "user", content: "what colour?" }] }),
      400,
      "image_missing",
    );
    await expectRefused(await ask(key.key, userMessage(image())), 400, "question_missing");
    await expectRefused(
      await ask(key.key, userMessage({ type: "text", text: "   " }, image())),
      400,
      "question_missing",
    );
    await expectRefused(
      await ask(key.key, { messages: [{ role: "system", content: "be brief" }] }),
      400,
      "missing_user_message",
    );
    await expectRefused(await ask(key.key, { messages: [] }), 400, "parameter_out_of_range", "messages");
  });

  it("too many images", async () => {
    await expectRefused(
      await ask(key.key, userMessage({ type: "text", text: "which?" }, image(), image())),
      400,
      "too_many_images",
    );
    const twoMessages = {
      messages: [userMessage(image()).messages[0], userMessage({ type: "text", text: "and?" }, image()).messages[0]],
    };
    await expectRefused(await ask(key.key, twoMessages), 400, "too_many_images");
  });

  it("unsupported image types", async () => {
    await expectRefused(
      await ask(key.key, chatBody({ image: "data:image/bmp;base64,Qk0=" })),
      415,
      "unsupported_image_type",
    );
    await expectRefused(
      await ask(key.key, chatBody({ image: "data:image/svg+xml;base64,PHN2Zz4=" })),
      415,
      "unsupported_image_type",
    );
    // Declared PNG, but the bytes are not an image: the magic bytes decide.
    await expectRefused(
      await ask(key.key, chatBody({ image: dataUrl(new TextEncoder().encode("GIF is what I am not")) })),
      415,
      "unsupported_image_type",
    );
    await expectRefused(
      await ask(key.key, chatBody({ image: "data:image/png;base64,@@@" })),
      400,
      "invalid_image_base64",
    );
    await expectRefused(await ask(key.key, chatBody({ image: "data:image/png,rawbytes" })), 400, "invalid_image_url");
  });

  it("oversize body (413) and oversize image (413)", async () => {
    const big = chatBody({ question: "x".repeat(5000) });
    await expectRefused(await ask(key.key, big, {}, { MAX_BODY_BYTES: "4096" }), 413, "body_too_large");
    await expectRefused(await ask(key.key, chatBody(), {}, { MAX_IMAGE_BYTES: "100" }), 413, "image_too_large");
  });

  it("unknown model (404 model_not_found)", async () => {
    await expectRefused(await ask(key.key, chatBody({ model: "gpt-4o" })), 404, "model_not_found", "model");
  });

  it.each<[string, Record<string, unknown>, string]>([
    ["max_tokens 0", { max_tokens: 0 }, "max_tokens"],
    ["max_tokens 65", { max_tokens: 65 }, "max_tokens"],
    ["max_completion_tokens 1000", { max_completion_tokens: 1000 }, "max_completion_tokens"],
    ["retention 0", { stitch: { retention: 0 } }, "stitch.retention"],
    ["retention 1.5", { stitch: { retention: 1.5 } }, "stitch.retention"],
    ["prune_layer 0", { stitch: { prune_layer: 0 } }, "stitch.prune_layer"],
    ["exit_threshold 2", { stitch: { exit_threshold: 2 } }, "stitch.exit_threshold"],
    ["cache ttl -1", { stitch: { cache: { ttl: -1 } } }, "stitch.cache.ttl"],
    ["temperature 3", { temperature: 3 }, "temperature"],
    ["n 2", { n: 2 }, "n"],
  ])("parameter out of range: %s", async (_name, params, param) => {
    const res = await ask(key.key, chatBody(params));
    expect(res.status).toBe(400);
    expect(res.json.error.param).toBe(param);
    await expectRefused(res, 400, res.json.error.code);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ["n 2", { n: 2 }, "n"],
    ["response_format json_object", { response_format: { type: "json_object" } }, "response_format"],
    ["response_format json_schema", { response_format: { type: "json_schema", json_schema: {} } }, "response_format"],
  ])("refuses what it cannot do by name: %s", async (_name, params, param) => {
    await expectRefused(await ask(key.key, chatBody(params)), 400, "unsupported_parameter", param);
  });

  it("accepts response_format text and n 1", async () => {
    const other = await createKey();
    const res = await ask(other.key, chatBody({ response_format: { type: "text" }, n: 1 }));
    expect(res.status, res.text).toBe(200);
  });

  it("wrong enum values", async () => {
    await expectRefused(
      await ask(key.key, chatBody({ stitch: { fallback: "large" } })),
      400,
      "invalid_value",
      "stitch.fallback",
    );
    await expectRefused(
      await ask(key.key, { messages: [{ role: "tool", content: "x" }] }),
      400,
      "invalid_value",
      "messages.0.role",
    );
  });

  it.each<[string, Record<string, unknown>, string]>([
    ["temperature 0.7", { temperature: 0.7 }, "temperature"],
    ["temperature 1", { temperature: 1 }, "temperature"],
    ["top_p 0.9", { top_p: 0.9 }, "top_p"],
  ])("sampling, which a greedy engine would silently ignore: %s", async (_name, params, param) => {
    await expectRefused(await ask(key.key, chatBody(params)), 400, "unsupported_sampling", param);
  });

  it("a bad Idempotency-Key or cache header", async () => {
    await expectRefused(
      await ask(key.key, chatBody(), { "idempotency-key": "has space" }),
      400,
      "invalid_idempotency_key",
    );
    await expectRefused(await ask(key.key, chatBody(), { "x-stitch-cache-ttl": "soon" }), 400, "invalid_value");
  });
});
