/**
 * The per-request method parameters, checked against the loaded packs and
 * completed with the serving defaults (request → env → calibration file → built-in),
 * before any model runs, so a bad `prune_layer` costs no compute.
 */
import { InvalidRequestError, type MethodParams, type Mode } from "../shared/index.js";
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
  fallback: MethodParams["fallback"];
  imageDetail: ImageDetail;
}

// Parameter names as the public API spells them (the engine reports the same ones).
export const PARAM = { pruneLayer: "stitch.prune_layer", retention: "stitch.retention" } as const;

export function checkPruneLayer(layer: number, large: PackInfo): void {
  if (!large.splitLayers.includes(layer)) {
    throw new InvalidRequestError(
      `prune_layer must be one of ${large.splitLayers.join(", ") || "(none)"} for ${large.name}`,
      "invalid_prune_layer",
      PARAM.pruneLayer,
    );
  }
}

export function resolveMethod(
  params: MethodParams,
  large: PackInfo,
  defaults: PruneDefaults,
  detail?: DetailPolicy,
): ResolvedMethod {
  const pruneLayer = params.prune_layer ?? defaults.pruneLayer;
  checkPruneLayer(pruneLayer, large);
  const retention = params.retention ?? defaults.retention;
  if (!(retention > 0 && retention <= 1)) {
    throw new InvalidRequestError("retention must be in (0, 1]", "invalid_retention", PARAM.retention);
  }
  return {
    mode: params.mode,
    maxTokens: params.max_tokens,
    pruneLayer,
    retention,
    exitThreshold: params.exit_threshold,
    fallback: params.fallback,
    // The pair shares one image recipe (checked at start-up), so the large pack's stands for both.
    imageDetail: resolveImageDetail(params, large, detail),
  };
}
