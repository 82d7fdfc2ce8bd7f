import { z } from "zod";
import { MODES } from "../paths.js";
import { MeteringSchema } from "./metering.js";
import { LargeMethodSchema, MethodParamsSchema, RESOLVED_DETAILS } from "./method-params.js";
import { CalibrationIdSchema } from "./shadow.js";

/** The image as it travels between functions: base64 bytes, decoded only by the GPU functions. */
export const ImagePayloadSchema = z.object({
  base64: z.string().min(1),
  /** Declared type (from a data: URL or Content-Type); the decoder still sniffs the bytes. */
  media_type: z.string().optional(),
});

/**
 * The conversation as the model's chat template reads it: roles and content parts, with the request's one
 * image as an `image` part where the client put it. The edge builds it from the OpenAI messages; both functions
 * render it through their own pack's template.
 */
export const ConversationPartSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text"), text: z.string() }),
  z.object({ type: z.literal("image") }),
]);
export const ConversationMessageSchema = z.object({
  role: z.enum(["system", "user", "assistant"]),
  content: z.array(ConversationPartSchema),
});
export const ConversationSchema = z.array(ConversationMessageSchema).min(1).max(64);
export type ConversationPart = z.infer<typeof ConversationPartSchema>;
export type Conversation = z.infer<typeof ConversationSchema>;

/**
 * Where each visual token sits in the image, so a client can draw a ranking over it: one entry per tile in token
 * order (tiles row-major, then the thumbnail), each a rows × cols grid of tokens covering the given rectangle
 * (fractions of the image's width and height).
 */
export const TokenTileSchema = z.object({
  x: z.number().min(0).max(1),
  y: z.number().min(0).max(1),
  width: z.number().gt(0).max(1),
  height: z.number().gt(0).max(1),
  rows: z.number().int().positive(),
  cols: z.number().int().positive(),
});
export type TokenTile = z.infer<typeof TokenTileSchema>;

/** What the method did with the visual tokens of one request (`stitch.explain`): the heatmap and the kept tokens. */
export const ExplanationSchema = z
  .object({
    visual_tokens: z.number().int().nonnegative(),
    layout: z.array(TokenTileSchema),
    /** The small model's attention ranking (SGP), one score per visual token; null when the small model did not run. */
    ranking: z.array(z.number()).nullable(),
    /** Indices of the visual tokens the large model kept from `prune_layer` on; null when it was not pruned or did not run. */
    kept: z.array(z.number().int().nonnegative()).nullable(),
    prune_layer: z.number().int().nullable(),
  })
  .meta({ id: "Explanation" });
export type Explanation = z.infer<typeof ExplanationSchema>;

/** One alternative at a token position: its text (the tokenizer's decoding of the id), log probability, UTF-8 bytes. */
export const TopLogprobSchema = z.object({
  token: z.string(),
  logprob: z.number().max(0),
  /** The token's own bytes (a byte-level BPE token may hold part of a character); concatenated, the answer's bytes. */
  bytes: z.array(z.number().int().min(0).max(255)),
});
/** A generated token with its log probability and the most likely alternatives (OpenAI's ChatCompletionTokenLogprob). */
export const TokenLogprobSchema = TopLogprobSchema.extend({ top_logprobs: z.array(TopLogprobSchema).max(20) }).meta({
  id: "TokenLogprob",
});
export type TokenLogprob = z.infer<typeof TokenLogprobSchema>;
/**
 * Whose vision-embedding cache entries a request may use: an opaque name set by the caller (the edge: `shared` for
 * keys with the shared cache scope, `key:<keyId>` otherwise). A cached image's embeddings serve only requests of the
 * same partition, so the time saved by a hit (visible in the metering) never tells one tenant what another sent.
 * Absent: the partition "" (trusted direct callers: tools, benchmarks). The small function passes it on to the large.
 */
export const CachePartitionSchema = z.string().max(100);

/** Edge → small function: POST /v1/answer. */
export const AnswerRequestSchema = MethodParamsSchema.extend({
  request_id: z.string().min(1).max(128),
  cache_partition: CachePartitionSchema.optional(),
  image: ImagePayloadSchema,
  messages: ConversationSchema,
  stream: z.boolean().default(false),
});
export type AnswerRequest = z.infer<typeof AnswerRequestSchema>;
export type AnswerRequestInput = z.input<typeof AnswerRequestSchema>;

export const ExitScoresSchema = z.object({
  confidence: z.number(),
  consistency: z.number().nullable(), // null: the exit rule ignores it, so the re-read was skipped
  decision: z.number(),
  threshold: z.number(),
  /** Which calibration the threshold came from (`offline`, `request`, or the edge's shadow curve id). */
  calibration: CalibrationIdSchema.optional(),
  /** The calibrated score from the deployment's offline fit (serving-defaults.json): P(the escalation agrees). */
  agreement_probability: z.number().min(0).max(1).nullable().optional(),
  /** That fit's name (`offline:<seed>/<count>`); null or absent: the deployment has none. */
  agreement_calibration: CalibrationIdSchema.nullable().optional(),
});

/** Small function → edge: the answer, the path that produced it, and what each function metered. */
export const AnswerResponseSchema = z.object({
  request_id: z.string(),
  answer: z.string(),
  path: z.enum(["small", "large"]),
  mode: z.enum(MODES),
  /** SEE scores of the small answer (absent when the small model did not run, e.g. `large`, `fastv`). */
  exit: ExitScoresSchema.nullable(),
  /** True when the large function failed and the small answer was returned under `fallback: small`. */
  degraded: z.boolean(),
  finish_reason: z.enum(["stop", "length"]),
  /** The image detail level the request ran at (`auto` resolved). */
  image_detail: z.enum(RESOLVED_DETAILS),
  metering: z.object({ small: MeteringSchema.nullable(), large: MeteringSchema.nullable() }),
  /** Model pack versions, part of the edge cache key. */
  models: z.object({ small: z.string(), large: z.string() }),
  /** Present when the request asked for it. */
  explanation: ExplanationSchema.optional(),
  /** With `logprobs`: one entry per token of the answer, from the model that wrote it. */
  logprobs: z.array(TokenLogprobSchema).optional(),
});
export type AnswerResponse = z.infer<typeof AnswerResponseSchema>;

/** Small function → large function: POST /v1/escalate, carrying the small model's ranking. */
export const EscalateRequestSchema = LargeMethodSchema.extend({
  request_id: z.string().min(1).max(128),
  /** The AnswerRequest's partition, forwarded: the large function's vision cache is partitioned alike. */
  cache_partition: CachePartitionSchema.optional(),
  image: ImagePayloadSchema,
  messages: ConversationSchema,
  /** Importance of each visual token (higher = keep); required for `sgp`. */
  ranking: z.array(z.number()).optional(),
  stream: z.boolean().default(false),
});
export type EscalateRequest = z.infer<typeof EscalateRequestSchema>;
export type EscalateRequestInput = z.input<typeof EscalateRequestSchema>;

export const EscalateResponseSchema = z.object({
  request_id: z.string(),
  answer: z.string(),
  finish_reason: z.enum(["stop", "length"]),
  metering: MeteringSchema,
  model: z.string(),
  /** With `explain`: the visual tokens kept from the prune layer on (null: not pruned). */
  kept: z.array(z.number().int().nonnegative()).nullable().optional(),
  logprobs: z.array(TokenLogprobSchema).optional(),
});
export type EscalateResponse = z.infer<typeof EscalateResponseSchema>;

/**
 * Server-sent events of a streamed answer (small → edge, large → small):
 * `token` events carry text deltas (with logprobs asked for, those of the tokens the delta completes; a delta may be
 * empty when tokens add no text); exactly one `done` (the full response) or `error` (an error body) ends the stream.
 */
export const StreamTokenEventSchema = z.object({ text: z.string(), logprobs: z.array(TokenLogprobSchema).optional() });
export const STREAM_EVENTS = ["token", "done", "error"] as const;

/** The one-turn conversation of a plain visual question: the image, then the question (tools, tests, benchmarks). */
export function askAboutImage(question: string): Conversation {
  return [{ role: "user", content: [{ type: "image" }, { type: "text", text: question }] }];
}
