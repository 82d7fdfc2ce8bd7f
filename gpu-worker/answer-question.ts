/**
 * The orchestrator of one AnswerRequest (the small function's whole job):
 * check the method parameters and the question → decode the image → run the
 * small model (ranking + exit decision) unless the mode skips it → return the
 * small answer or escalate to the pruned large model → one settle path that
 * builds the response with both functions' metering. The accelerator time
 * metered is the time the request held this function's slot (occupancy.ts),
 * decoding and host work included, not only the model runs.
 */
import {
  type AnswerRequest,
  type AnswerResponse,
  type EscalateResponse,
  type Explanation,
  type Metering,
  type Mode,
  StitchError,
} from "../shared/index.js";
import { predictIsotonic } from "../shared/shadow/isotonic.js";
import { type DecodeLimits, decodeImage } from "./decode-image.js";
import type { AgreementFit } from "./engine/serving-defaults.js";
import type {
  DecodedImage,
  ImageDetail,
  LargeMode,
  OnToken,
  PackInfo,
  SmallEngine,
  SmallResult,
} from "./engine/types.js";
import { type EscalateToLarge, modelVersion } from "./escalation/escalate.js";
import type { Logger } from "./http/logger.js";
import { type Occupancy, SlotClock } from "./occupancy.js";
import type { DetailPolicy } from "./resolve-detail.js";
import { largeMethod, type PruneDefaults, resolveMethod } from "./resolve-method.js";
import type { ShadowJob, ShadowRunner } from "./shadow/shadow-runner.js";

export interface AnswerDeps {
  small: SmallEngine;
  /** The large pack's manifest facts: split layers to validate against, version for the response. */
  largePack: PackInfo;
  escalation: EscalateToLarge;
  defaults: PruneDefaults;
  /** What `detail: auto` and `low` mean here; default: DEFAULT_DETAIL_POLICY. */
  detail?: DetailPolicy;
  limits: Pick<DecodeLimits, "maxBytes" | "maxPixels" | "timeoutMs">;
  /** Shadow escalation of a share of early exits; absent: off. */
  shadow?: ShadowRunner;
  /** The offline calibrated score (serving-defaults.json `agreement`); absent: the deployment has none. */
  agreement?: AgreementFit;
}

export interface AnswerOptions {
  signal?: AbortSignal;
  /** Epoch ms by which the request must be answered; bounds the large call. */
  deadline?: number;
  /** Streaming: text deltas of the answer that will be returned, never of one that will be discarded. */
  onToken?: OnToken;
  log?: Logger;
  /** Called before a remote escalation: this process's part is done, so its concurrency slot can go to the next request. */
  releaseSlot?: () => void;
  /** How long the request has held this function's slot (the HTTP layer's clock); default: from this call on. */
  occupancy?: Occupancy;
  /**
   * Called with each stitch-sgl exit decision the key lets be sampled (shadow/shadow-runner.ts): an early exit with
   * what its shadow escalation would send, an escalation with the large answer it got. The caller decides whether
   * to sample it, and runs the job after the client has its answer.
   */
  onDecision?: (job: ShadowJob) => void;
}

/** Modes that never run the small model. */
const LARGE_ONLY: ReadonlySet<Mode> = new Set(["large", "fastv"]);

export async function answerQuestion(
  req: AnswerRequest,
  deps: AnswerDeps,
  options: AnswerOptions = {},
): Promise<AnswerResponse> {
  const occupancy = options.occupancy ?? new SlotClock();
  const pair = { small: modelVersion(deps.small.pack), large: modelVersion(deps.largePack) };
  const method = resolveMethod(req, deps.largePack, deps.defaults, deps.detail, pair);
  /** The exit decision as answered: its calibration, and the offline calibrated score at it when the deployment has one. */
  const exitScores = (exit: SmallResult["exit"]) => ({
    ...exit,
    calibration: method.calibration,
    agreement_probability: deps.agreement ? predictIsotonic(deps.agreement.steps, exit.decision) : null,
    agreement_calibration: deps.agreement?.calibration ?? null,
  });
  deps.small.checkConversation(req.messages);
  const image = await decodeImage(req.image.base64, { ...deps.limits, resizeTo: deps.small.pack.processor.decodeSize });
  const settle = (
    answer: Omit<AnswerResponse, "request_id" | "mode" | "models" | "explanation" | "image_detail">,
    explained?: { ranking: number[] | null; kept: number[] | null },
  ): AnswerResponse => ({
    request_id: req.request_id,
    mode: method.mode,
    models: pair,
    image_detail: method.imageDetail.level,
    ...answer,
    ...(method.explain && {
      explanation: explain(image, deps.small.pack, method.imageDetail, answer.metering, method.pruneLayer, explained),
    }),
  });
  const smallAnswer = (small: SmallResult, degraded: boolean, occupiedMs: number) => {
    // A small answer is only released once it is final: after the exit decision, or as the fallback.
    if (small.logprobs?.length) options.onToken?.(small.answer, small.logprobs);
    else if (small.answer) options.onToken?.(small.answer);
    return settle(
      {
        answer: small.answer,
        path: "small",
        exit: exitScores(small.exit),
        degraded,
        finish_reason: small.finishReason,
        metering: { small: occupied(small.metering, occupiedMs), large: null },
        ...(small.logprobs && { logprobs: small.logprobs }),
      },
      { ranking: small.ranking, kept: null },
    );
  };

  // sgl escalates exactly as sgp does: pruned by the small model's ranking.
  const largeMode: LargeMode = method.mode === "large" || method.mode === "fastv" ? method.mode : "sgp";
  /** The escalation of this request, as the large model is asked it (a shadow asks the same, without extras). */
  function escalateCall(ranking: number[] | undefined) {
    return {
      requestId: req.request_id,
      image: req.image,
      decoded: image,
      cachePartition: req.cache_partition,
      messages: req.messages,
      method: { ...largeMethod(method, largeMode), explain: false, logprobs: undefined },
      ranking: largeMode === "sgp" ? ranking : undefined,
    };
  }
  function shadowJob(small: SmallResult, escalated?: string): ShadowJob {
    return {
      ...(escalated !== undefined && { escalated }),
      call: escalateCall(small.ranking),
      smallAnswer: small.answer,
      pair,
      decision: small.exit.decision,
      threshold: small.exit.threshold,
      calibration: method.calibration,
    };
  }
  // Logprobs are computed only by a model whose answer may be returned: the small one unless the mode always escalates
  // (sgp), or may fall back to it.
  const smallMayAnswer = method.mode === "small" || method.mode === "sgl" || method.fallback === "small";
  let small: SmallResult | null = null;
  if (!LARGE_ONLY.has(method.mode)) {
    small = await deps.small.runSmall({
      image,
      messages: req.messages,
      maxTokens: method.maxTokens,
      imageDetail: method.imageDetail,
      exitThreshold: method.exitThreshold,
      cachePartition: req.cache_partition,
      ...(smallMayAnswer && method.logprobs !== undefined && { logprobs: method.logprobs }),
      signal: options.signal,
    });
    if (method.mode === "sgl" && small.shouldExit && req.shadow !== false) options.onDecision?.(shadowJob(small));
    if (method.mode === "small" || (method.mode === "sgl" && small.shouldExit)) {
      return smallAnswer(small, false, occupancy.elapsedMs());
    }
  }

  let streamed = false;
  let large: EscalateResponse;
  // This function's part so far: the small model's, or (large-only modes) the intake that has no small metering.
  const beforeLarge = occupancy.elapsedMs();
  if (deps.escalation.remote) options.releaseSlot?.();
  try {
    large = await deps.escalation.escalate({
      ...escalateCall(small?.ranking),
      method: largeMethod(method, largeMode),
      onToken:
        options.onToken &&
        ((text, logprobs) => {
          streamed = true;
          if (logprobs) options.onToken?.(text, logprobs);
          else options.onToken?.(text);
        }),
      signal: options.signal,
      deadline: options.deadline,
    });
  } catch (err) {
    // Never silently: only when the request allows it, only with a small answer at hand, only before any
    // large token went out, and only for failures of the large side (not for the request's own deadline).
    if (small && method.fallback === "small" && !streamed && largeSideFailure(err, options.signal)) {
      options.log?.warn("large function failed; answering with the small answer, degraded", { error: err });
      return smallAnswer(small, true, beforeLarge); // the failed large attempt is not billed
    }
    throw err;
  }
  if (method.mode === "sgl" && small && req.shadow !== false) options.onDecision?.(shadowJob(small, large.answer));
  return settle(
    {
      answer: large.answer,
      path: "large",
      exit: small ? exitScores(small.exit) : null,
      degraded: false,
      finish_reason: large.finish_reason,
      ...(large.logprobs && { logprobs: large.logprobs }),
      metering: {
        small: small ? occupied(small.metering, beforeLarge) : null,
        // A remote large function meters its own occupancy; in process, the slot's time since the small part.
        large: occupied(
          large.metering,
          (deps.escalation.remote ? large.metering.accelerator_ms : occupancy.elapsedMs() - beforeLarge) +
            (small ? 0 : beforeLarge),
        ),
      },
    },
    { ranking: small?.ranking ?? null, kept: large.kept ?? null },
  );
}

/** The engine's metering with the accelerator time the request actually occupied (never less than its model runs). */
function occupied(metering: Metering, occupiedMs: number): Metering {
  return { ...metering, accelerator_ms: Math.max(metering.accelerator_ms, occupiedMs) };
}

/** The explanation of one answer: where the tokens sit (from the image and recipe alone) and what the method did. */
function explain(
  image: DecodedImage,
  pack: PackInfo,
  detail: ImageDetail,
  metering: AnswerResponse["metering"],
  pruneLayer: number,
  explained: { ranking: number[] | null; kept: number[] | null } = { ranking: null, kept: null },
): Explanation {
  const answering = metering.large ?? metering.small;
  return {
    visual_tokens: answering?.visual_tokens_total ?? 0,
    layout: pack.processor.withDetail(detail).tokenLayout(image.width, image.height),
    ranking: explained.ranking,
    kept: explained.kept,
    prune_layer: explained.kept ? pruneLayer : null,
  };
}

/** 5xx of the large side (unavailable, failed, overloaded, timed out), while the request itself is still live. */
function largeSideFailure(err: unknown, signal?: AbortSignal): boolean {
  return !signal?.aborted && err instanceof StitchError && err.status >= 500;
}
