/**
 * The per-request method parameters, checked against the loaded packs and
 * completed with the serving defaults (request → env → calibration file → built-in),
 * before any model runs, so a bad `prune_layer` costs no compute.
 */
import type { MethodParams, Mode } from "../shared/index.js";
import { checkPruneLayer, checkRetention } from "./engine/check-pruning.js";
import type { ImageDetail, PackInfo } from "./engine/types.js";
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
}

/** The calibration id of the deployment's own threshold (serving-defaults.json or STITCH_EXIT_THRESHOLD). */
export const OFFLINE_CALIBRATION = "offline";

export function resolveMethod(
  params: MethodParams,
  large: PackInfo,
  defaults: PruneDefaults,
  detail?: DetailPolicy,
): ResolvedMethod {
  const pruneLayer = params.prune_layer ?? defaults.pruneLayer;
  checkPruneLayer(pruneLayer, large);
  const retention = params.retention ?? defaults.retention;
  checkRetention(retention);
  return {
    mode: params.mode,
    maxTokens: params.max_tokens,
    pruneLayer,
    retention,
    exitThreshold: params.exit_threshold ?? params.exit_calibration?.threshold,
    calibration:
      params.exit_threshold !== undefined ? "request" : (params.exit_calibration?.calibration ?? OFFLINE_CALIBRATION),
    fallback: params.fallback,
    // The pair shares one image recipe (checked at start-up), so the large pack's stands for both.
    imageDetail: resolveImageDetail(params, large, detail),
  };
}
