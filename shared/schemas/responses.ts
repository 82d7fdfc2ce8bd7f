/**
 * The Responses API (`POST /v1/responses`), as far as one visual question needs it: `input` as a string or a list of
 * messages whose content parts are `input_text` and `input_image`, `instructions` as the system prompt,
 * `max_output_tokens`, `metadata`, `stream`, and the `stitch` extension. What the product cannot do is refused by name
 * (refusals.ts at the edge), never ignored: stored responses, tools, structured output, reasoning, sampling.
 * The edge turns a valid request into the same task a chat completion becomes: one pipeline, two shapes.
 */
import { z } from "zod";
import {
  IMAGE_DETAIL_DESCRIPTION,
  MaxTokens,
  ModelFieldSchema,
  StitchOptionsSchema,
  StitchResultSchema,
} from "./chat-completions.js";
import { TokenLogprobSchema } from "./inference.js";
import { IMAGE_DETAILS, MAX_TOP_LOGPROBS } from "./method-params.js";

const InputTextSchema = z.object({ type: z.literal("input_text"), text: z.string() });

const InputImageSchema = z.object({
  type: z.literal("input_image"),
  image_url: z
    .string()
    .min(1)
    .nullable()
    .optional()
    .meta({ description: "A `data:image/...;base64,` URL or an `https:` URL." }),
  file_id: z.string().nullable().optional().meta({ description: "Not supported: send the image as `image_url`." }),
  detail: z.enum(IMAGE_DETAILS).optional().meta({ description: IMAGE_DETAIL_DESCRIPTION }),
});

const OutputTextSchema = z.object({
  type: z.literal("output_text"),
  text: z.string(),
  annotations: z.array(z.unknown()).optional(),
});

export const ResponseInputPartSchema = z.discriminatedUnion("type", [
  InputTextSchema,
  InputImageSchema,
  OutputTextSchema,
]);
export type ResponseInputPart = z.infer<typeof ResponseInputPartSchema>;

export const ResponseInputMessageSchema = z.object({
  type: z.literal("message").optional(),
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z.union([z.string(), z.array(ResponseInputPartSchema).max(64)]),
  id: z.string().optional(),
  status: z.string().optional(),
});
export type ResponseInputMessage = z.infer<typeof ResponseInputMessageSchema>;

/** The one `include` value served: the output text's logprobs. */
export const LOGPROBS_INCLUDE = "message.output_text.logprobs";

/** Parameters a client may send at their defaults; anything else the product cannot do is refused with a 400. */
export const ResponseCreateRequestSchema = z
  .strictObject({
    model: ModelFieldSchema,
    input: z.union([z.string(), z.array(ResponseInputMessageSchema).min(1).max(64)]),
    instructions: z.string().nullable().optional().meta({ description: "The system prompt." }),
    max_output_tokens: MaxTokens.nullable().optional(),
    metadata: z
      .record(z.string().max(64), z.string().max(512))
      .refine((m) => Object.keys(m).length <= 16, "at most 16 keys")
      .nullable()
      .optional()
      .meta({ description: "Returned on the response as sent; not used otherwise." }),
    stream: z.boolean().nullable().optional(),
    store: z.boolean().nullable().optional().meta({ description: "Responses are not stored: false or omitted." }),
    previous_response_id: z.string().nullable().optional().meta({ description: "Not supported (nothing is stored)." }),
    temperature: z.number().min(0).max(2).nullable().optional().meta({ description: "Greedy decoding: 0 or omitted." }),
    top_p: z.number().min(0).max(1).nullable().optional().meta({ description: "Greedy decoding: 1 or omitted." }),
    tools: z.array(z.unknown()).nullable().optional().meta({ description: "Not supported: empty or omitted." }),
    tool_choice: z.unknown().optional().meta({ description: "Not supported: `none`, `auto` or omitted." }),
    parallel_tool_calls: z.boolean().nullable().optional(),
    text: z
      .object({ format: z.object({ type: z.string() }).loose().optional() })
      .loose()
      .nullable()
      .optional()
      .meta({ description: "Only `{format: {type: 'text'}}`." }),
    reasoning: z.unknown().optional().meta({ description: "Not supported: null or omitted." }),
    truncation: z.enum(["auto", "disabled"]).nullable().optional(),
    include: z
      .array(z.string())
      .nullable()
      .optional()
      .meta({
        description: `Only ${JSON.stringify(LOGPROBS_INCLUDE)}: the answer's tokens with their log probabilities (not answered from or stored in the answer cache).`,
      }),
    top_logprobs: z
      .number()
      .int()
      .min(0)
      .max(MAX_TOP_LOGPROBS)
      .nullable()
      .optional()
      .meta({
        description: `0-20 most likely tokens at each position; needs include ${JSON.stringify(LOGPROBS_INCLUDE)}.`,
      }),
    user: z.string().max(256).optional(),
    stitch: StitchOptionsSchema.optional(),
  })
  .meta({ id: "ResponseCreateRequest" });
export type ResponseCreateRequest = z.infer<typeof ResponseCreateRequestSchema>;

const OutputTextPartSchema = z.object({
  type: z.literal("output_text"),
  text: z.string(),
  annotations: z.array(z.never()),
  /** With include ["message.output_text.logprobs"]: the answer's tokens; else empty. */
  logprobs: z.array(TokenLogprobSchema),
});

const OutputMessageSchema = z.object({
  type: z.literal("message"),
  id: z.string(),
  status: z.enum(["in_progress", "completed", "incomplete"]),
  role: z.literal("assistant"),
  content: z.array(OutputTextPartSchema),
});

/** The response object Stitch sends (one assistant message of one output_text part); OpenAI's `Response` shape. */
export const ResponseObjectSchema = z
  .object({
    id: z.string(),
    object: z.literal("response"),
    created_at: z.number().int(),
    status: z.enum(["in_progress", "completed", "incomplete", "failed"]),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    incomplete_details: z.object({ reason: z.literal("max_output_tokens") }).nullable(),
    instructions: z.string().nullable(),
    max_output_tokens: z.number().int(),
    metadata: z.record(z.string(), z.string()),
    model: z.string(),
    output: z.array(OutputMessageSchema),
    parallel_tool_calls: z.boolean(),
    previous_response_id: z.null(),
    reasoning: z.object({ effort: z.null(), summary: z.null() }),
    store: z.literal(false),
    temperature: z.number(),
    text: z.object({ format: z.object({ type: z.literal("text") }) }),
    tool_choice: z.literal("none"),
    tools: z.array(z.never()),
    top_p: z.number(),
    truncation: z.literal("disabled"),
    usage: z
      .object({
        input_tokens: z.number().int().nonnegative(),
        input_tokens_details: z.object({
          cached_tokens: z.number().int().meta({
            description:
              "Input tokens a cache served: all of them on an answer-cache hit; the visual tokens when the function's vision-embedding cache held the image.",
          }),
          cache_write_tokens: z.number().int().meta({ description: "Always 0: there is no prompt caching to write." }),
          image_tokens: z
            .number()
            .int()
            .meta({ description: "Stitch's extension: the visual tokens the answering model read (before pruning)." }),
        }),
        output_tokens: z.number().int().nonnegative(),
        output_tokens_details: z.object({ reasoning_tokens: z.number().int() }),
        total_tokens: z.number().int().nonnegative(),
      })
      .optional()
      .meta({ description: "Absent until the response is complete." }),
    user: z.string().optional(),
    stitch: StitchResultSchema.optional(),
  })
  .meta({ id: "Response" });
export type ResponseObject = z.infer<typeof ResponseObjectSchema>;
export type OutputMessage = z.infer<typeof OutputMessageSchema>;
export type OutputText = z.infer<typeof OutputTextPartSchema>;
