/** From what answered (the small function, or the cache) to the Outcome that is billed and returned. */
import type { AnswerResponse, CacheStatus, Metering } from "../../../shared/index.js";
import type { CachedAnswer } from "../cache/answer-cache.js";
import { type FunctionMetering, type PriceTable, priceRequest } from "../price/price.js";
import type { Outcome } from "../respond/outcome.js";
import { agreementScore, type Calibration } from "../shadow/calibration.js";
import type { ChatTask } from "../validate/chat-task.js";

export interface Billed {
  outcome: Outcome;
  metering: FunctionMetering;
}

interface Base {
  /** The calibrations the request was served with: the answering pair's calibrated score maps the decision score. */
  calibrations?: readonly Calibration[];
  requestId: string;
  task: ChatTask;
  prices: PriceTable;
  now: number;
}

export function fromAnswer(base: Base, answer: AnswerResponse, cache: CacheStatus): Billed {
  const { small, large } = answer.metering;
  // The function whose model wrote the answer reports its tokens and the visual tokens it kept.
  const answering: Metering | null = answer.path === "large" ? (large ?? small) : (small ?? large);
  const agreement = agreementScore(base.calibrations ?? [], answer);
  return {
    metering: answer.metering,
    outcome: {
      requestId: base.requestId,
      model: base.task.model,
      mode: answer.mode,
      path: answer.path,
      answer: answer.answer,
      finishReason: answer.finish_reason,
      decisionScore: answer.exit?.decision ?? null,
      exitThreshold: answer.exit?.threshold ?? null,
      exitCalibration: answer.exit?.calibration ?? null,
      agreementProbability: agreement.probability,
      agreementCalibration: agreement.calibration,
      degraded: answer.degraded,
      imageDetail: answer.image_detail,
      visualTokens: { total: answering?.visual_tokens_total ?? 0, kept: answering?.visual_tokens_kept ?? 0 },
      acceleratorMs: { small: small?.accelerator_ms ?? 0, large: large?.accelerator_ms ?? 0 },
      usage: {
        prompt_tokens: answering?.prompt_tokens ?? 0,
        completion_tokens: answering?.completion_tokens ?? 0,
        cached_tokens: answering?.visual_tokens_cached ?? 0,
      },
      priceNanos: priceRequest(base.prices, answer.path, answer.metering),
      cache,
      created: Math.floor(base.now / 1000),
      ...(answer.explanation && { explanation: answer.explanation }),
      ...(answer.logprobs && { logprobs: answer.logprobs }),
    },
  };
}

export function fromCache(base: Base, hit: CachedAnswer): Billed {
  const metering = { small: null, large: null };
  return {
    metering,
    outcome: {
      requestId: base.requestId,
      model: base.task.model,
      mode: hit.mode,
      path: "cache",
      answer: hit.answer,
      finishReason: hit.finish_reason,
      decisionScore: hit.decision_score,
      exitThreshold: null,
      exitCalibration: null,
      agreementProbability: null,
      agreementCalibration: null,
      degraded: false,
      imageDetail: hit.image_detail,
      visualTokens: hit.visual_tokens,
      acceleratorMs: { small: 0, large: 0 },
      // Nothing ran: every prompt token was served by the cache.
      usage: { ...hit.usage, cached_tokens: hit.usage.prompt_tokens },
      priceNanos: priceRequest(base.prices, "cache", metering),
      cache: "HIT",
      created: Math.floor(base.now / 1000),
    },
  };
}

/** What the cache keeps of an answer; degraded answers (large function failed) are never kept. */
export function toCached(answer: AnswerResponse, outcome: Outcome): CachedAnswer | null {
  if (answer.degraded) return null;
  return {
    answer: answer.answer,
    finish_reason: answer.finish_reason,
    mode: answer.mode,
    produced_by: answer.path,
    decision_score: outcome.decisionScore,
    image_detail: outcome.imageDetail,
    visual_tokens: outcome.visualTokens,
    usage: { prompt_tokens: outcome.usage.prompt_tokens, completion_tokens: outcome.usage.completion_tokens },
    models: answer.models,
  };
}
