/**
 * The per-request method parameters, checked against the loaded packs and
 * completed with the serving defaults (request → env → calibration file → built-in),
 * before any model runs, so a bad `prune_layer` costs no compute.
 */
import { InvalidRequestError, type MethodParams, type Mode } from "../shared/index.js";
import type { ImageDetail, PackInfo } from "./engine/types.js";

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
  imageDetail?: ImageDetail;
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

/**
 * The request's image detail, checked against the pack's recipe: only a processor that resizes by pixel budget
 * takes one, and only within the pack's own bounds (a larger image than the pack allows would be unbounded work).
 */
export function resolveImageDetail(params: Pick<MethodParams, "min_pixels" | "max_pixels">, pack: PackInfo) {
  if (params.min_pixels === undefined && params.max_pixels === undefined) return undefined;
  const recipe = pack.image;
  const param = params.max_pixels !== undefined ? "stitch.max_pixels" : "stitch.min_pixels";
  if (recipe.processor !== "smart_resize") {
    throw new InvalidRequestError(
      `${pack.name} cuts images into fixed tiles; min_pixels and max_pixels do not apply`,
      "image_detail_unsupported",
      param,
    );
  }
  const detail = {
    minPixels: params.min_pixels ?? recipe.min_pixels,
    maxPixels: params.max_pixels ?? recipe.max_pixels,
  };
  if (
    detail.minPixels < recipe.min_pixels ||
    detail.maxPixels > recipe.max_pixels ||
    detail.minPixels > detail.maxPixels
  ) {
    throw new InvalidRequestError(
      `min_pixels and max_pixels must lie within ${recipe.min_pixels}..${recipe.max_pixels} for ${pack.name}, min ≤ max`,
      "invalid_image_detail",
      param,
    );
  }
  return detail;
}

export function resolveMethod(params: MethodParams, large: PackInfo, defaults: PruneDefaults): ResolvedMethod {
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
    imageDetail: resolveImageDetail(params, large),
  };
}
