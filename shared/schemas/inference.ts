import { z } from "zod";
import { MODES } from "../paths.js";
import { MeteringSchema } from "./metering.js";
import { CalibrationIdSchema, ExitCalibrationSchema, MaxDisagreementSchema } from "./shadow.js";

/** The image as it travels between functions: base64 bytes, decoded only by the GPU functions. */
export const ImagePayloadSchema = z.object({
  base64: z.string().min(1),
  /** Declared type (from a data: URL or Content-Type); the decoder still sniffs the bytes. */
  media_type: z.string().optional(),
});

export const FALLBACKS = ["error", "small"] as const;

/**
 * Image detail, OpenAI's `detail`: how many visual tokens an image becomes, per processor kind (README, "Image
 * detail"): `low` the fewest the pack's recipe allows (tiles: one tile and no thumbnail; smart_resize: a small pixel
 * budget), `high` the pack's full recipe, `auto` the deployment's default (`STITCH_DEFAULT_DETAIL`). A `fixed`
 * processor reads every image the same way at each level.
 */
export const IMAGE_DETAILS = ["auto", "low", "high"] as const;
export type ImageDetailLevel = (typeof IMAGE_DETAILS)[number];
/** The levels `auto` resolves to: what a function reports it ran. */
export const RESOLVED_DETAILS = ["low", "high"] as const;
export type ResolvedDetail = (typeof RESOLVED_DETAILS)[number];

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
export const MAX_TOP_LOGPROBS = 20;
/** Asked for: the answer's tokens' logprobs with this many alternatives each. Absent: none (not computed). */
const LogprobsParam = z.number().int().min(0).max(MAX_TOP_LOGPROBS).optional();

/** Per-request knobs of the method; each is validated again against the loaded packs. */
export const MethodParamsSchema = z.object({
  mode: z.enum(MODES).default("sgl"),
  max_tokens: z.number().int().min(1).max(64).default(8),
  /** Fraction of visual tokens the large model keeps from layer K on (sgp, fastv, sgl escalation). */
  retention: z.number().gt(0).max(1).optional(),
  /** Layer K at which the large model is pruned; must be one of the pack's split boundaries. */
  prune_layer: z.number().int().min(1).optional(),
  /** Exit threshold on the SEE decision score, overriding the configured one. */
  exit_threshold: z.number().min(0).max(1).optional(),
  /** Image detail level; `auto` (the default) is the small function's STITCH_DEFAULT_DETAIL. */
  detail: z.enum(IMAGE_DETAILS).default("auto"),
  /**
   * Image detail, for packs whose processor resizes by a pixel budget (smart_resize): bounds on the resized image's
   * area, within the range the detail level allows (`high`: the pack's own; `low`: up to the low budget). The visual
   * token count follows, the same for small and large.
   */
  min_pixels: z.number().int().positive().optional(),
  max_pixels: z.number().int().positive().optional(),
  /** If the large function fails: `error` (default) or answer with the small model's answer marked degraded. */
  fallback: z.enum(FALLBACKS).default("error"),
  /** Return the logprobs of the answer's tokens, with this many top alternatives each (0-20). */
  logprobs: LogprobsParam,
  /**
   * The quality dial: at most this fraction of early exits may disagree with the large model (95% confidence). The
   * edge serves it from its shadow curve as `exit_calibration`; it is not read past the edge.
   */
  max_disagreement: MaxDisagreementSchema.optional(),
  /** Set by the edge: the threshold of its shadow calibration for this request (below `exit_threshold`). */
  exit_calibration: ExitCalibrationSchema.optional(),
  /** Set by the edge: false when the key opted out of shadow escalation. */
  shadow: z.boolean().default(true),
});
export type MethodParams = z.infer<typeof MethodParamsSchema>;

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
  /** Return the explanation (ranking, kept tokens, layout) with the answer. */
  explain: z.boolean().default(false),
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
export const EscalateRequestSchema = z.object({
  request_id: z.string().min(1).max(128),
  /** The AnswerRequest's partition, forwarded: the large function's vision cache is partitioned alike. */
  cache_partition: CachePartitionSchema.optional(),
  image: ImagePayloadSchema,
  messages: ConversationSchema,
  mode: z.enum(["large", "sgp", "fastv"]),
  max_tokens: z.number().int().min(1).max(64),
  retention: z.number().gt(0).max(1),
  prune_layer: z.number().int().min(1),
  /** The detail level the small function resolved (`auto` never travels this hop). */
  detail: z.enum(RESOLVED_DETAILS).default("high"),
  /** The pixel budget the small function resolved (smart_resize packs): used as is, within the pack's bounds. */
  min_pixels: z.number().int().positive().optional(),
  max_pixels: z.number().int().positive().optional(),
  /** Importance of each visual token (higher = keep); required for `sgp`. */
  ranking: z.array(z.number()).optional(),
  stream: z.boolean().default(false),
  /** Return the indices of the visual tokens kept. */
  explain: z.boolean().default(false),
  logprobs: LogprobsParam,
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
