/**
 * The per-request method parameters (shared MethodParams), checked against the loaded packs and completed with the
 * serving defaults (request → env → calibration file → built-in), before any model runs, so a bad `prune_layer` costs
 * no compute; and the large model's part of them, sent on (LargeMethod) and resolved again by the function that runs
 * it. The one place the wire's knobs become the engine's request fields.
 */
import { exitCalibrationFor, type LargeMethod, type MethodParams, type Mode, type PackPair } from "../shared/index.js";
import { checkPruneLayer, checkRetention } from "./engine/check-pruning.js";
import type { ImageDetail, LargeMode, LargeRequest, PackInfo } from "./engine/types.js";
import { type DetailPolicy, resolveImageDetail } from "./resolve-detail.js";

export interface PruneDefaults {
  /** Layer K of the large model at which visual tokens are pruned. */
  pruneLayer: number;
  /** Fraction r of visual tokens kept from layer K on. */
  retention: number;
}

export interface ResolvedMethod {
  mode: Mode;
  maxTokens: number;
  pruneLayer: number;
  retention: number;
  exitThreshold?: number;
  /** Where the exit threshold came from: the request's own, the edge's shadow calibration, or the deployment's. */
  calibration: string;
  fallback: MethodParams["fallback"];
  imageDetail: ImageDetail;
  explain: boolean;
  logprobs?: number;
}

/** The calibration id of the deployment's own threshold (serving-defaults.json or STITCH_EXIT_THRESHOLD). */
export const OFFLINE_CALIBRATION = "offline";

/**
 * `pair`: the packs this function runs (as the answer's `models` names them): the edge's exit calibration is taken
 * for it alone, since another pair's curve measures other models (no entry for it: the offline threshold).
 */
export function resolveMethod(
  params: MethodParams,
  large: PackInfo,
  defaults: PruneDefaults,
  detail: DetailPolicy | undefined,
  pair: PackPair,
): ResolvedMethod {
  const pruneLayer = params.prune_layer ?? defaults.pruneLayer;
  checkPruneLayer(pruneLayer, large);
  const retention = params.retention ?? defaults.retention;
  checkRetention(retention);
  const shadow = exitCalibrationFor(params.exit_calibration, pair);
  return {
    mode: params.mode,
    maxTokens: params.max_tokens,
    pruneLayer,
    retention,
    exitThreshold: params.exit_threshold ?? shadow?.threshold,
    calibration: params.exit_threshold !== undefined ? "request" : (shadow?.calibration ?? OFFLINE_CALIBRATION),
    fallback: params.fallback,
    // The pair shares one image recipe (checked at start-up), so the large pack's stands for both.
    imageDetail: resolveImageDetail(params, large, detail),
    explain: params.explain,
    ...(params.logprobs !== undefined && { logprobs: params.logprobs }),
  };
}

/** What the large model is asked to run, as it travels (EscalateRequest's knobs): everything already resolved. */
export function largeMethod(method: ResolvedMethod, mode: LargeMode): LargeMethod {
  const { level, minPixels, maxPixels } = method.imageDetail;
  return {
    mode,
    max_tokens: method.maxTokens,
    retention: mode === "large" ? 1 : method.retention,
    prune_layer: method.pruneLayer,
    detail: level,
    ...(minPixels !== undefined && { min_pixels: minPixels }),
    ...(maxPixels !== undefined && { max_pixels: maxPixels }),
    explain: method.explain,
    ...(method.logprobs !== undefined && { logprobs: method.logprobs }),
  };
}

export type LargeRun = Pick<
  LargeRequest,
  "mode" | "maxTokens" | "imageDetail" | "retention" | "pruneLayer" | "logprobs"
>;

/**
 * A forwarded LargeMethod as the large engine's request fields, its pixel budget checked against this pack's own
 * bounds (the small function's resolution is used as is, so both read the same tokens). Pruning is checked by the
 * engine against its pack.
 */
export function resolveLargeMethod(method: LargeMethod, pack: PackInfo, policy?: DetailPolicy): LargeRun {
  return {
    mode: method.mode,
    maxTokens: method.max_tokens,
    imageDetail: resolveImageDetail(method, pack, policy, true),
    retention: method.retention,
    pruneLayer: method.prune_layer,
    ...(method.logprobs !== undefined && { logprobs: method.logprobs }),
  };
}
