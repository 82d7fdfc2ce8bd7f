/**
 * The public API's request and response bodies (OpenAI chat-completions shape,
 * plus the optional `stitch` extension). The edge validates requests with these
 * schemas and generates `/openapi.json` from the same objects.
 */
import { z } from "zod";
import { MODES, PATHS } from "../paths.js";
import { ExplanationSchema, TokenLogprobSchema } from "./inference.js";
import { FALLBACKS, IMAGE_DETAILS, MAX_TOP_LOGPROBS, MethodParamsSchema, RESOLVED_DETAILS } from "./method-params.js";

export const DEFAULT_MODEL = "stitch-sgl";
/** Longest cache TTL a request may ask for (the edge may clamp it further). */
export const MAX_CACHE_TTL_SECONDS = 30 * 24 * 3600;
export const CACHE_STATUSES = ["HIT", "MISS", "BYPASS"] as const;
export type CacheStatus = (typeof CACHE_STATUSES)[number];

/** What `detail` does, for both APIs' image parts (README, "Image detail"). */
export const IMAGE_DETAIL_DESCRIPTION =
  "How many visual tokens the image becomes (the price follows what ran): `low` the fewest the model's recipe allows (InternVL: one 448-px tile, no thumbnail: 256 tokens; Qwen2.5-VL: a small pixel budget), `high` the model's full recipe, `auto` (default) the deployment's default. Part of the answer-cache key.";

export const TextPartSchema = z.object({ type: z.literal("text"), text: z.string() });

export const ImageUrlPartSchema = z.object({
  type: z.literal("image_url"),
  image_url: z.object({
    url: z.string().min(1).meta({ description: "A `data:image/...;base64,` URL or an `https:` URL." }),
    detail: z.enum(IMAGE_DETAILS).optional().meta({ description: IMAGE_DETAIL_DESCRIPTION }),
  }),
});

export const ContentPartSchema = z.discriminatedUnion("type", [TextPartSchema, ImageUrlPartSchema]);
export type ContentPart = z.infer<typeof ContentPartSchema>;

export const ChatMessageSchema = z.object({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z.union([z.string(), z.array(ContentPartSchema)]).nullable(),
  name: z.string().max(256).optional(),
});
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

export const StitchCacheOptionsSchema = z.strictObject({
  bypass: z.boolean().optional().meta({ description: "Neither read nor write the answer cache." }),
  ttl: z
    .number()
    .int()
    .min(0)
    .max(MAX_CACHE_TTL_SECONDS)
    .optional()
    .meta({ description: "Seconds to keep this answer in the cache; 0 = do not store." }),
});

const method = MethodParamsSchema.shape;
export const StitchOptionsSchema = z.strictObject({
  retention: method.retention,
  prune_layer: method.prune_layer,
  exit_threshold: method.exit_threshold,
  max_disagreement: method.max_disagreement.meta({
    description:
      "The quality dial: at most this fraction (0 < x ≤ 1) of early exits may disagree with the large model, with 95% confidence, served from the shadow samples' curve; cannot be combined with exit_threshold.",
  }),
  min_pixels: method.min_pixels.meta({
    description: "Image detail (packs that resize by pixel budget only): the least area the image is resized to.",
  }),
  max_pixels: method.max_pixels.meta({
    description: "Image detail (packs that resize by pixel budget only): the most area; fewer pixels, fewer tokens.",
  }),
  fallback: z.enum(FALLBACKS).optional(),
  cache: StitchCacheOptionsSchema.optional(),
  explain: z.boolean().optional().meta({
    description:
      "Return stitch.explanation: the small model's attention ranking of every visual token, the tokens the large model kept, and where each token sits in the image. Not billed extra; the models always run (no cache read or write).",
  }),
});
export type StitchOptions = z.infer<typeof StitchOptionsSchema>;

/** An answer's length limit, in both APIs (max_tokens, max_completion_tokens, max_output_tokens). */
export const MaxTokens = z.number().int().min(1).max(64);

/** The model a request asks for, in both APIs. */
export const ModelFieldSchema = z
  .string()
  .min(1)
  .default(DEFAULT_MODEL)
  .meta({ description: "stitch-sgl (default), stitch-small, stitch-large, stitch-sgp, stitch-fastv" });

export const ChatCompletionRequestSchema = z
  .strictObject({
    model: ModelFieldSchema,
    messages: z.array(ChatMessageSchema).min(1).max(64),
    max_tokens: MaxTokens.nullable().optional(),
    max_completion_tokens: MaxTokens.nullable().optional(),
    stream: z.boolean().nullable().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional().meta({
      description:
        "`include_usage: false` drops the stream's last chunk (no choices, the usage and the `stitch` result), and the `stitch` result rides on the finish chunk instead; by default (or `true`) it is sent.",
    }),
    response_format: z
      .object({ type: z.string() })
      .loose()
      .nullable()
      .optional()
      .meta({ description: "Only `{type: 'text'}` (or omitted): other formats are refused (unsupported_parameter)." }),
    temperature: z
      .number()
      .min(0)
      .max(2)
      .nullable()
      .optional()
      .meta({ description: "Decoding is greedy: 0 or omitted; any other value is refused (unsupported_sampling)." }),
    top_p: z
      .number()
      .min(0)
      .max(1)
      .nullable()
      .optional()
      .meta({ description: "Decoding is greedy: 1 or omitted; any other value is refused (unsupported_sampling)." }),
    logprobs: z.boolean().nullable().optional().meta({
      description:
        "Return the answer's tokens with their log probabilities (choices[].logprobs.content; in a stream, on each chunk's delta), as the model that answered decoded them. Such a request is not answered from or stored in the answer cache.",
    }),
    top_logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullable().optional().meta({
      description: "0-20: this many most likely tokens at each position, with their log probabilities; needs logprobs.",
    }),
    n: z.number().int().nullable().optional().meta({
      description: "One answer per request: 1 or omitted; any other value is refused (unsupported_parameter).",
    }),
    seed: z
      .number()
      .int()
      .nullable()
      .optional()
      .meta({ description: "Accepted: greedy decoding gives the same answer for every seed." }),
    user: z.string().max(256).optional(),
    stitch: StitchOptionsSchema.optional(),
  })
  .meta({ id: "ChatCompletionRequest" });
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;

const Tokens = z.number().int().nonnegative();

export const UsageSchema = z.object({
  prompt_tokens: Tokens.meta({
    description: "Every token the answering model read: the prompt's text and the image's visual tokens.",
  }),
  completion_tokens: Tokens,
  total_tokens: Tokens,
  prompt_tokens_details: z.object({
    cached_tokens: Tokens.meta({
      description:
        "Prompt tokens a cache served: all of them on an answer-cache hit; the visual tokens when the function's vision-embedding cache held the image.",
    }),
    image_tokens: Tokens.meta({ description: "The visual tokens the answering model read (before any pruning)." }),
    text_tokens: Tokens.meta({ description: "prompt_tokens - image_tokens." }),
  }),
});
export type ChatUsage = z.infer<typeof UsageSchema>;

export const StitchResultSchema = z
  .object({
    request_id: z.string(),
    path: z.enum(PATHS),
    mode: z.enum(MODES),
    decision_score: z.number().nullable(),
    exit_threshold: z
      .number()
      .nullable()
      .optional()
      .meta({ description: "The SEE threshold the decision score was held against (null: no exit decision)." }),
    exit_calibration: z.string().nullable().optional().meta({
      description:
        "The calibration the exit threshold came from: `offline` (the deployment's), `request` (stitch.exit_threshold), or the shadow curve `shadow:<samples>@<newest sample>/<target>`.",
    }),
    agreement_probability: z.number().min(0).max(1).nullable().optional().meta({
      description:
        "The calibrated score: the probability that the large model gives the same answer at this decision score, from the answering pack pair's shadow samples once there are enough of them, else from the deployment's offline calibration (null when neither exists, or with no exit decision).",
    }),
    agreement_calibration: z.string().nullable().optional().meta({
      description:
        "The fit agreement_probability came from: the shadow samples `shadow:<samples>@<newest sample>`, or the offline calibration `offline:<seed>/<count>` (null: none).",
    }),
    degraded: z.boolean(),
    image_detail: z
      .enum(RESOLVED_DETAILS)
      .meta({ description: "The image detail the answer was produced at (`auto` resolved by the deployment)." }),
    visual_tokens: z.object({ total: z.number().int().nonnegative(), kept: z.number().int().nonnegative() }),
    accelerator_ms: z.object({ small: z.number().nonnegative(), large: z.number().nonnegative() }),
    cost: z.number().nonnegative().meta({ description: "US dollars billed for this request." }),
    cache: z.enum(CACHE_STATUSES),
    explanation: ExplanationSchema.optional(),
  })
  .meta({ id: "StitchResult" });
export type StitchResult = z.infer<typeof StitchResultSchema>;

export const FINISH_REASONS = ["stop", "length"] as const;

/** A choice's logprobs: the answer's tokens (null when not asked for). */
export const ChoiceLogprobsSchema = z.object({ content: z.array(TokenLogprobSchema), refusal: z.null() }).nullable();
export type ChoiceLogprobs = z.infer<typeof ChoiceLogprobsSchema>;

export const ChatCompletionResponseSchema = z
  .object({
    id: z.string(),
    object: z.literal("chat.completion"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({ role: z.literal("assistant"), content: z.string(), refusal: z.null() }),
        finish_reason: z.enum(FINISH_REASONS),
        logprobs: ChoiceLogprobsSchema,
      }),
    ),
    usage: UsageSchema,
    stitch: StitchResultSchema,
  })
  .meta({ id: "ChatCompletionResponse" });
export type ChatCompletionResponse = z.infer<typeof ChatCompletionResponseSchema>;

export const ChatCompletionChunkSchema = z
  .object({
    id: z.string(),
    object: z.literal("chat.completion.chunk"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        delta: z.object({ role: z.literal("assistant").optional(), content: z.string().optional() }),
        finish_reason: z.enum(FINISH_REASONS).nullable(),
        logprobs: ChoiceLogprobsSchema.meta({ description: "The logprobs of the tokens this delta completes." }),
      }),
    ),
    usage: UsageSchema.nullable().optional(),
    stitch: StitchResultSchema.optional(),
  })
  .meta({ id: "ChatCompletionChunk" });
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunkSchema>;

export const ModelSchema = z.object({
  id: z.string(),
  object: z.literal("model"),
  created: z.number().int(),
  owned_by: z.string(),
  stitch: z.object({ mode: z.enum(MODES), description: z.string() }),
});
export const ModelListSchema = z
  .object({ object: z.literal("list"), data: z.array(ModelSchema) })
  .meta({ id: "ModelList" });
export type ModelList = z.infer<typeof ModelListSchema>;
