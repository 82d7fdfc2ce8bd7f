/**
 * The outcome of one answered request, whatever path produced it, and the
 * OpenAI-shaped bodies built from it (JSON, or the chunks of an SSE stream).
 */
import type {
  AnswerPath,
  CacheStatus,
  ChatCompletionChunk,
  ChatCompletionResponse,
  ChatUsage,
  Explanation,
  Mode,
  ResolvedDetail,
  StitchResult,
  TokenLogprob,
} from "../../../shared/index.js";
import { nanosToUsd } from "../price/price.js";

export interface Outcome {
  requestId: string;
  model: string;
  mode: Mode;
  path: AnswerPath;
  answer: string;
  finishReason: "stop" | "length";
  decisionScore: number | null;
  /** The threshold SEE held the score against (null when no exit was decided, e.g. a cache hit). */
  exitThreshold: number | null;
  /** The calibration the threshold came from (null: no exit decision). */
  exitCalibration: string | null;
  /** The calibrated score: P(the large model agrees) at this decision score; null: no fit, or no exit decision. */
  agreementProbability: number | null;
  /** Which fit gave it: `shadow:<samples>@<newest sample id>` or `offline:<seed>/<count>`; null: none. */
  agreementCalibration: string | null;
  degraded: boolean;
  /** The image detail the answer was produced at (`auto` resolved by the function). */
  imageDetail: ResolvedDetail;
  visualTokens: { total: number; kept: number };
  acceleratorMs: { small: number; large: number };
  /**
   * The answering model's tokens: prompt_tokens counts the text and visual tokens it read, cached_tokens those a cache
   * served (all of them on an answer-cache hit; the visual tokens when the vision cache had the image).
   */
  usage: { prompt_tokens: number; completion_tokens: number; cached_tokens: number };
  priceNanos: number;
  cache: CacheStatus;
  /** Seconds since epoch. */
  created: number;
  /** Only when the request asked for it (never cached). */
  explanation?: Explanation;
  /** The answer's tokens with their logprobs, from the model that answered: only when asked (never cached). */
  logprobs?: TokenLogprob[];
}

export const completionId = (requestId: string): string => `chatcmpl-${requestId.replace(/^req_/, "")}`;

export function stitchResult(o: Outcome): StitchResult {
  return {
    request_id: o.requestId,
    path: o.path,
    mode: o.mode,
    decision_score: o.decisionScore,
    exit_threshold: o.exitThreshold,
    exit_calibration: o.exitCalibration,
    agreement_probability: o.agreementProbability,
    agreement_calibration: o.agreementCalibration,
    degraded: o.degraded,
    image_detail: o.imageDetail,
    visual_tokens: o.visualTokens,
    accelerator_ms: o.acceleratorMs,
    cost: nanosToUsd(o.priceNanos),
    cache: o.cache,
    ...(o.explanation && { explanation: o.explanation }),
  };
}

/**
 * Chat completions' usage: OpenAI's CompletionUsage, whose prompt_tokens_details has image_tokens and text_tokens
 * fields of its own (the visual tokens the answering model read, and the rest of its prompt).
 */
function usageOf(o: Outcome): ChatUsage {
  const { prompt_tokens, completion_tokens, cached_tokens } = o.usage;
  const image = Math.min(o.visualTokens.total, prompt_tokens);
  return {
    prompt_tokens,
    completion_tokens,
    total_tokens: prompt_tokens + completion_tokens,
    prompt_tokens_details: { cached_tokens, image_tokens: image, text_tokens: prompt_tokens - image },
  };
}

export function completionBody(o: Outcome): ChatCompletionResponse {
  return {
    id: completionId(o.requestId),
    object: "chat.completion",
    created: o.created,
    model: o.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: o.answer, refusal: null },
        finish_reason: o.finishReason,
        logprobs: logprobsOf(o.logprobs),
      },
    ],
    usage: usageOf(o),
    stitch: stitchResult(o),
  };
}

/** A choice's logprobs: the tokens given, or null (none asked for). */
const logprobsOf = (content: TokenLogprob[] | undefined) => (content ? { content, refusal: null } : null);

export interface ChunkHead {
  id: string;
  model: string;
  created: number;
}

type Delta = ChatCompletionChunk["choices"][number]["delta"];

export function deltaChunk(
  head: ChunkHead,
  delta: Delta,
  finishReason: "stop" | "length" | null = null,
  logprobs?: TokenLogprob[],
): ChatCompletionChunk {
  return {
    ...head,
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: logprobsOf(logprobs) }],
  };
}

/** The last chunk before `[DONE]`: no choices, the usage and the Stitch result. */
export function usageChunk(head: ChunkHead, o: Outcome): ChatCompletionChunk {
  return { ...head, object: "chat.completion.chunk", choices: [], usage: usageOf(o), stitch: stitchResult(o) };
}

/** A whole stored or cached completion replayed as the chunks of a stream. */
export function chunksOf(body: ChatCompletionResponse): ChatCompletionChunk[] {
  const head = { id: body.id, model: body.model, created: body.created };
  const choice = body.choices[0];
  return [
    deltaChunk(head, { role: "assistant", content: "" }),
    deltaChunk(head, { content: choice?.message.content ?? "" }, null, choice?.logprobs?.content),
    deltaChunk(head, {}, choice?.finish_reason ?? "stop"),
    { ...head, object: "chat.completion.chunk", choices: [], usage: body.usage, stitch: body.stitch },
  ];
}
