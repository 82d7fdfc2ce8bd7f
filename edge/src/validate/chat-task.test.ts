import { describe, expect, it } from "vitest";
import type { StitchError } from "../../../shared/index.js";
import { parseChatTask } from "./chat-task.js";

const IMAGE = "data:image/png;base64,iVBORw0KGgo=";
const userTurn = (detail?: string) => ({
  role: "user",
  content: [
    { type: "image_url", image_url: { url: IMAGE, ...(detail && { detail }) } },
    { type: "text", text: "What colour is the circle?" },
  ],
});
const body = (request: Record<string, unknown> = {}) => ({ model: "stitch-sgl", messages: [userTurn()], ...request });
/** The stitch extension's method knobs, each away from its default: they reach the method as they are. */
const KNOBS = {
  retention: 0.25,
  prune_layer: 2,
  exit_threshold: 0.4,
  min_pixels: 3136,
  max_pixels: 50_176,
  fallback: "small",
};
const parse = (request: Record<string, unknown>, header: { bypass?: boolean; ttl?: number } = {}) =>
  parseChatTask(new TextEncoder().encode(JSON.stringify(request)), header, 1);
const refusal = (request: Record<string, unknown>) => {
  try {
    parse(request);
  } catch (err) {
    const e = err as StitchError;
    return { status: e.status, code: e.code, param: e.param };
  }
  throw new Error("not refused");
};

describe("the method's knobs, as the small function takes them", () => {
  it("fills every default from the one schema: sgl, 8 tokens, auto detail, error fallback, no explanation", () => {
    expect(parse(body()).method).toEqual({
      mode: "sgl",
      max_tokens: 8,
      detail: "auto",
      fallback: "error",
      explain: false,
    });
  });

  it("carries the model's mode, the answer's length, the image part's detail, the stitch extension and logprobs", () => {
    const task = parse({
      model: "stitch-large",
      messages: [userTurn("low")],
      max_tokens: 3,
      max_completion_tokens: 5,
      logprobs: true,
      top_logprobs: 2,
      stitch: { ...KNOBS, cache: { ttl: 60 } },
    });
    expect(task.method).toEqual({
      mode: "large",
      max_tokens: 5, // max_completion_tokens wins over the deprecated max_tokens
      detail: "low",
      ...KNOBS,
      explain: false,
      logprobs: 2,
    });
  });

  it("asks for logprobs with no alternatives when top_logprobs is absent, and refuses top_logprobs alone", () => {
    expect(parse(body({ logprobs: true })).method.logprobs).toBe(0);
    expect(parse(body({ logprobs: false })).method.logprobs).toBeUndefined();
    expect(refusal(body({ top_logprobs: 3 }))).toEqual({ status: 400, code: "invalid_value", param: "top_logprobs" });
  });
});

describe("the cache", () => {
  it("is read and written by default, for the configured time", () => {
    expect(parse(body()).cache).toEqual({ bypass: false, ttl: undefined });
  });
  it.each<[string, Record<string, unknown>, { bypass?: boolean }]>([
    ["stitch.cache.bypass", { stitch: { cache: { bypass: true } } }, {}],
    ["the bypass header", {}, { bypass: true }],
    ["an explanation (it describes this run)", { stitch: { explain: true } }, {}],
    ["logprobs (they describe this run)", { logprobs: true }, {}],
  ])("is bypassed for %s", (_why, request, header) => {
    expect(parse(body(request), header).cache.bypass).toBe(true);
  });
  it("keeps the body's ttl over the header's", () => {
    expect(parse(body({ stitch: { cache: { ttl: 5 } } }), { ttl: 60 }).cache.ttl).toBe(5);
    expect(parse(body(), { ttl: 60 }).cache.ttl).toBe(60);
  });
});

describe("refusals, by name", () => {
  it.each<[string, Record<string, unknown>, { status: number; code: string; param: string | null }]>([
    ["an unknown model", { model: "gpt-4o" }, { status: 404, code: "model_not_found", param: "model" }],
    ["sampling", { temperature: 0.7 }, { status: 400, code: "unsupported_sampling", param: "temperature" }],
    ["nucleus sampling", { top_p: 0.9 }, { status: 400, code: "unsupported_sampling", param: "top_p" }],
    ["two answers", { n: 2 }, { status: 400, code: "unsupported_parameter", param: "n" }],
    [
      "a JSON answer",
      { response_format: { type: "json_object" } },
      { status: 400, code: "unsupported_parameter", param: "response_format" },
    ],
    [
      "an unknown stitch knob",
      { stitch: { retention: 0.5, turbo: true } },
      { status: 400, code: "unknown_parameter", param: "stitch" },
    ],
    [
      "an image in a system message",
      { messages: [{ role: "system", content: userTurn().content }, userTurn()] },
      { status: 400, code: "invalid_image_position", param: "messages.0.content" },
    ],
    [
      "a second image",
      { messages: [{ role: "user", content: [...userTurn().content, ...userTurn().content] }] },
      { status: 400, code: "too_many_images", param: "messages" },
    ],
    [
      "no image",
      { messages: [{ role: "user", content: "What colour is the circle?" }] },
      { status: 400, code: "image_missing", param: "messages" },
    ],
    [
      "no question",
      { messages: [{ role: "user", content: [userTurn().content[0]] }] },
      { status: 400, code: "question_missing", param: "messages.0.content" },
    ],
  ])("%s", (_what, request, expected) => {
    expect(refusal(body(request))).toEqual(expected);
  });

  it("accepts temperature 0, top_p 1 and n 1: greedy, one answer", () => {
    expect(parse(body({ temperature: 0, top_p: 1, n: 1 })).method.mode).toBe("sgl");
  });
});

describe("the conversation", () => {
  it("keeps the image where the client put it and folds developer messages into system turns", () => {
    const task = parse(
      body({
        messages: [
          { role: "developer", content: "Be brief." },
          { role: "user", content: [{ type: "text", text: "Look:" }, ...userTurn().content] },
        ],
      }),
    );
    expect(task.messages).toEqual([
      { role: "system", content: [{ type: "text", text: "Be brief." }] },
      {
        role: "user",
        content: [
          { type: "text", text: "Look:" },
          { type: "image" },
          { type: "text", text: "What colour is the circle?" },
        ],
      },
    ]);
    expect(task.image).toEqual({ url: IMAGE, param: "messages.1.content.1.image_url.url", detail: undefined });
  });
});
