import { describe, expect, it } from "vitest";
import type { z } from "zod";
import {
  type AnswerRequestInput,
  AnswerRequestSchema,
  AnswerResponseSchema,
  askAboutImage,
  EscalateRequestSchema,
  EscalateResponseSchema,
} from "./inference.js";
import { MeteringSchema } from "./metering.js";
import { MethodParamsSchema } from "./method-params.js";

const metering = {
  accelerator_ms: 12.5,
  flops: 52e6,
  visual_tokens_total: 64,
  visual_tokens_kept: 64,
  visual_tokens_cached: 0,
  prompt_tokens: 75,
  completion_tokens: 1,
  gpu_class: "cpu",
};

const answerRequest: AnswerRequestInput = {
  request_id: "req-1",
  image: { base64: "iVBORw0KGgo=", media_type: "image/png" },
  messages: askAboutImage("what colour is the circle ?"),
};

const answerResponse = {
  request_id: "req-1",
  answer: "red",
  path: "small",
  mode: "sgl",
  exit: { confidence: 0.9, consistency: 0.8, decision: 0.85, threshold: 0.6 },
  degraded: false,
  finish_reason: "stop",
  image_detail: "high",
  metering: { small: metering, large: null },
  models: { small: "tiny-s@1", large: "tiny-l@1" },
};

const escalateRequest = {
  request_id: "req-1",
  image: { base64: "iVBORw0KGgo=" },
  messages: askAboutImage("what colour is the circle ?"),
  mode: "sgp",
  max_tokens: 8,
  retention: 0.4,
  prune_layer: 2,
  ranking: [0.5, 0.1, 0.9],
};

/** The issues of a failed parse (fails the test if the input parsed). */
function issuesOf(schema: z.ZodType, input: unknown) {
  const result = schema.safeParse(input);
  expect(result.success).toBe(false);
  return result.error?.issues ?? [];
}

/** Asserts the input fails with exactly one issue, at `path`. */
function expectIssueAt(schema: z.ZodType, input: unknown, path: (string | number)[]) {
  const issues = issuesOf(schema, input);
  expect(issues[0]?.path).toEqual(path);
  expect(issues).toHaveLength(1);
}

describe("AnswerRequestSchema", () => {
  it("parses a minimal request and fills the defaults", () => {
    expect(AnswerRequestSchema.parse(answerRequest)).toEqual({
      ...answerRequest,
      mode: "sgl",
      max_tokens: 8,
      detail: "auto",
      fallback: "error",
      stream: false,
      explain: false,
    });
  });

  it("keeps every explicit method parameter", () => {
    const full = {
      ...answerRequest,
      mode: "fastv",
      max_tokens: 64,
      retention: 1,
      prune_layer: 2,
      exit_threshold: 0,
      detail: "low",
      fallback: "small",
      max_disagreement: 0.02,
      exit_calibration: [
        { pair: { small: "s@1", large: "l@1" }, threshold: 0.7, calibration: "shadow:240@17/0.02" },
        { pair: null, threshold: 2, calibration: "shadow:0/0.02" },
      ],
      shadow: false,
      stream: true,
      explain: true,
    };
    expect(AnswerRequestSchema.parse(full)).toEqual(full);
  });

  it.each([
    [
      "an exit calibration that is not a list",
      { exit_calibration: { threshold: 2, calibration: "x" } },
      ["exit_calibration"],
    ],
    [
      "two entries for one pair",
      { exit_calibration: [0.5, 0.6].map((threshold) => ({ pair: null, threshold, calibration: "x" })) },
      ["exit_calibration"],
    ],
    [
      "more entries than pairs calibrated",
      {
        exit_calibration: Array.from({ length: 6 }, (_, i) => ({
          pair: { small: `s@${i}`, large: "l@1" },
          threshold: 0.5,
          calibration: "x",
        })),
      },
      ["exit_calibration"],
    ],
    [
      "an entry with an unknown field",
      { exit_calibration: [{ pair: null, threshold: 0.5, calibration: "x", extra: 1 }] },
      ["exit_calibration", 0],
    ],
    ["no image bytes", { image: { base64: "" } }, ["image", "base64"]],
    ["an image that is a string", { image: "iVBORw0KGgo=" }, ["image"]],
    ["a non-string media type", { image: { base64: "x", media_type: 7 } }, ["image", "media_type"]],
    ["an empty request id", { request_id: "" }, ["request_id"]],
    ["a request id over 128 chars", { request_id: "r".repeat(129) }, ["request_id"]],
    ["a conversation that is not a list", { messages: 42 }, ["messages"]],
    ["an unknown mode", { mode: "turbo" }, ["mode"]],
    ["zero max_tokens", { max_tokens: 0 }, ["max_tokens"]],
    ["max_tokens over 64", { max_tokens: 65 }, ["max_tokens"]],
    ["fractional max_tokens", { max_tokens: 2.5 }, ["max_tokens"]],
    ["zero retention", { retention: 0 }, ["retention"]],
    ["retention above 1", { retention: 1.01 }, ["retention"]],
    ["prune_layer 0", { prune_layer: 0 }, ["prune_layer"]],
    ["a negative exit threshold", { exit_threshold: -0.1 }, ["exit_threshold"]],
    ["an unknown fallback", { fallback: "large" }, ["fallback"]],
    ["an unknown image detail", { detail: "medium" }, ["detail"]],
    ["a non-boolean stream", { stream: "yes" }, ["stream"]],
  ])("rejects %s", (_, change, path) => {
    expectIssueAt(AnswerRequestSchema, { ...answerRequest, ...change }, path);
  });

  it("reports a missing field at its own path", () => {
    const { messages: _, ...withoutMessages } = answerRequest;
    expectIssueAt(AnswerRequestSchema, withoutMessages, ["messages"]);
  });

  it("reports every bad field, not only the first", () => {
    const paths = issuesOf(AnswerRequestSchema, { ...answerRequest, mode: "x", max_tokens: 0 }).map((i) => i.path);
    expect(paths).toEqual([["mode"], ["max_tokens"]]);
  });
});

describe("MethodParamsSchema", () => {
  it("parses an empty object to the defaults", () => {
    expect(MethodParamsSchema.parse({})).toEqual({
      mode: "sgl",
      max_tokens: 8,
      detail: "auto",
      fallback: "error",
      explain: false,
    });
  });
});

describe("AnswerResponseSchema", () => {
  it("parses a small-path answer", () => {
    expect(AnswerResponseSchema.parse(answerResponse)).toEqual(answerResponse);
  });

  it("takes a null consistency (a rule that skips the re-read) but not a missing one", () => {
    const lean = { ...answerResponse, exit: { ...answerResponse.exit, consistency: null } };
    expect(AnswerResponseSchema.parse(lean)).toEqual(lean);
    const { consistency: _, ...missing } = answerResponse.exit;
    expectIssueAt(AnswerResponseSchema, { ...answerResponse, exit: missing }, ["exit", "consistency"]);
  });

  it("parses an escalated, degraded answer without exit scores", () => {
    const escalated = {
      ...answerResponse,
      path: "large",
      mode: "large",
      exit: null,
      degraded: true,
      finish_reason: "length",
      metering: { small: null, large: { ...metering, visual_tokens_kept: 6 } },
    };
    expect(AnswerResponseSchema.parse(escalated)).toEqual(escalated);
  });

  it.each([
    ["the cache path (only the edge answers from cache)", { path: "cache" }, ["path"]],
    ["a missing exit (must be null, not absent)", { exit: undefined }, ["exit"]],
    [
      "an exit score that is not a number",
      { exit: { ...answerResponse.exit, decision: "high" } },
      ["exit", "decision"],
    ],
    ["an unknown finish reason", { finish_reason: "eos" }, ["finish_reason"]],
    [
      "negative kept visual tokens",
      { metering: { small: { ...metering, visual_tokens_kept: -1 }, large: null } },
      ["metering", "small", "visual_tokens_kept"],
    ],
    [
      "fractional prompt tokens",
      { metering: { small: metering, large: { ...metering, prompt_tokens: 1.5 } } },
      ["metering", "large", "prompt_tokens"],
    ],
    ["a missing large pack version", { models: { small: "tiny-s@1" } }, ["models", "large"]],
    ["an unresolved image detail", { image_detail: "auto" }, ["image_detail"]],
  ])("rejects %s", (_, change, path) => {
    expectIssueAt(AnswerResponseSchema, { ...answerResponse, ...change }, path);
  });
});

describe("EscalateRequestSchema", () => {
  it("parses an sgp escalation with its ranking", () => {
    expect(EscalateRequestSchema.parse(escalateRequest)).toEqual({
      ...escalateRequest,
      detail: "high",
      stream: false,
      explain: false,
    });
  });

  it("parses a large-only escalation without a ranking", () => {
    const { ranking: _, ...large } = escalateRequest;
    expect(EscalateRequestSchema.parse({ ...large, mode: "large" })).toEqual({
      ...large,
      mode: "large",
      detail: "high",
      stream: false,
      explain: false,
    });
  });

  it.each([
    ["a small-model mode", { mode: "sgl" }, ["mode"]],
    ["a ranking entry that is not a number", { ranking: [0.5, 0.1, "0.9"] }, ["ranking", 2]],
    ["a missing retention (no default between functions)", { retention: undefined }, ["retention"]],
    ["a missing prune layer", { prune_layer: undefined }, ["prune_layer"]],
    ["max_tokens over 64", { max_tokens: 100 }, ["max_tokens"]],
    ["a missing max_tokens (no default between functions)", { max_tokens: undefined }, ["max_tokens"]],
    ["an unresolved image detail (auto never travels to the large function)", { detail: "auto" }, ["detail"]],
  ])("rejects %s", (_, change, path) => {
    expectIssueAt(EscalateRequestSchema, { ...escalateRequest, ...change }, path);
  });
});

describe("EscalateResponseSchema", () => {
  const escalateResponse = {
    request_id: "req-1",
    answer: "3",
    finish_reason: "stop",
    metering: { ...metering, visual_tokens_kept: 6 },
    model: "tiny-l@1",
  };

  it("parses a large answer", () => {
    expect(EscalateResponseSchema.parse(escalateResponse)).toEqual(escalateResponse);
  });

  it.each([
    ["an empty gpu class", { metering: { ...metering, gpu_class: "" } }, ["metering", "gpu_class"]],
    ["negative accelerator time", { metering: { ...metering, accelerator_ms: -1 } }, ["metering", "accelerator_ms"]],
    ["a missing model", { model: undefined }, ["model"]],
  ])("rejects %s", (_, change, path) => {
    expectIssueAt(EscalateResponseSchema, { ...escalateResponse, ...change }, path);
  });
});

describe("MeteringSchema", () => {
  it("parses a record and rejects a missing field at its path", () => {
    expect(MeteringSchema.parse(metering)).toEqual(metering);
    const { flops: _, ...withoutFlops } = metering;
    expectIssueAt(MeteringSchema, withoutFlops, ["flops"]);
  });
});
