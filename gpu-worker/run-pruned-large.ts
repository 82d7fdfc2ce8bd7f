/**
 * The large function's stage: an EscalateRequest (image, question, the small
 * model's ranking) → decoded image → the pruned large model → EscalateResponse,
 * metered by the time the request held this function's slot (occupancy.ts).
 */
import type { EscalateRequest, EscalateResponse } from "../shared/index.js";
import { type DecodeLimits, decodeImage } from "./decode-image.js";
import type { LargeEngine, LargeResult, OnToken } from "./engine/types.js";
import { modelVersion } from "./escalation/escalate.js";
import { type Occupancy, SlotClock } from "./occupancy.js";
import type { DetailPolicy } from "./resolve-detail.js";
import { resolveLargeMethod } from "./resolve-method.js";

export interface LargeDeps {
  large: LargeEngine;
  /** What `low` means when the small function did not send a pixel budget; default: DEFAULT_DETAIL_POLICY. */
  detail?: DetailPolicy;
  limits: Pick<DecodeLimits, "maxBytes" | "maxPixels" | "timeoutMs">;
}

export async function runPrunedLarge(
  req: EscalateRequest,
  deps: LargeDeps,
  options: { signal?: AbortSignal; onToken?: OnToken; occupancy?: Occupancy } = {},
): Promise<EscalateResponse> {
  const occupancy = options.occupancy ?? new SlotClock();
  const { large } = deps;
  large.checkConversation(req.messages);
  const image = await decodeImage(req.image.base64, { ...deps.limits, resizeTo: large.pack.processor.decodeSize });
  // Pruning parameters and the ranking are checked by the engine against its own pack.
  const result = await large.runLarge({
    image,
    cachePartition: req.cache_partition,
    messages: req.messages,
    ...resolveLargeMethod(req, large.pack, deps.detail),
    ranking: req.ranking,
    onToken: options.onToken,
    signal: options.signal,
  });
  const answer = escalateResponse(result, { requestId: req.request_id, model: modelVersion(large.pack), ...req });
  // Billed by what the request occupied this function for (decoding included), never less than the models' time.
  return {
    ...answer,
    metering: { ...answer.metering, accelerator_ms: Math.max(answer.metering.accelerator_ms, occupancy.elapsedMs()) },
  };
}

/** The large model's result as the escalation's answer: one mapping, for the HTTP function and the in-process call. */
export function escalateResponse(
  result: LargeResult,
  to: { requestId: string; model: string; explain?: boolean },
): EscalateResponse {
  return {
    request_id: to.requestId,
    answer: result.answer,
    finish_reason: result.finishReason,
    metering: result.metering,
    model: to.model,
    ...(to.explain && { kept: result.kept }),
    ...(result.logprobs && { logprobs: result.logprobs }),
  };
}
