/**
 * A request's image detail, checked against the pack's recipe before any pixel is decoded: the level (`auto` is the
 * deployment's default) and what it means for the pack's processor (its `resolveDetail`; README, "Image detail"):
 * - `tiles` (InternVL): `low` cuts one tile (the whole image resized to 448 px, no thumbnail: 256 tokens), `high`
 *   the recipe's grid of up to max_tiles tiles plus the thumbnail;
 * - `smart_resize` (Qwen2.5-VL): `low` resizes to at most the low budget (STITCH_LOW_DETAIL_MAX_PIXELS, clamped into
 *   the pack's own bounds), `high` within the pack's own [min_pixels, max_pixels];
 * - `fixed` (the embedded pair): every image is one tile at every level.
 * `stitch.min_pixels` / `stitch.max_pixels` narrow the level's range and must lie within it: a request for more than
 * its level allows is refused, never silently clamped. A tiling pack refuses them (it has no pixel budget).
 */
import type { MethodParams, ResolvedDetail } from "../shared/index.js";
import type { ImageDetail, PackInfo } from "./engine/types.js";

export interface DetailPolicy {
  /** What `auto` means here (STITCH_DEFAULT_DETAIL). */
  default: ResolvedDetail;
  /** smart_resize packs at `low`: the most pixels the image is resized to (STITCH_LOW_DETAIL_MAX_PIXELS). */
  lowMaxPixels: number;
}

/** 448 × 448: the area of one InternVL tile, so `low` is about 256 visual tokens in both families. */
export const DEFAULT_DETAIL_POLICY: DetailPolicy = { default: "high", lowMaxPixels: 448 * 448 };

type DetailParams = Pick<MethodParams, "min_pixels" | "max_pixels"> & { detail: MethodParams["detail"] };

/**
 * `forwarded`: the small function's own resolution, sent on to the large one. Its pixel bounds are then checked
 * against the pack's bounds only, so both functions read the same tokens even if their low budgets differ.
 */
export function resolveImageDetail(
  params: DetailParams,
  pack: PackInfo,
  policy: DetailPolicy = DEFAULT_DETAIL_POLICY,
  forwarded = false,
): ImageDetail {
  return pack.processor.resolveDetail(
    {
      level: params.detail === "auto" ? policy.default : params.detail,
      ...(params.min_pixels !== undefined && { minPixels: params.min_pixels }),
      ...(params.max_pixels !== undefined && { maxPixels: params.max_pixels }),
    },
    { packName: pack.name, lowMaxPixels: policy.lowMaxPixels, forwarded },
  );
}
