/**
 * What an image detail changes in a pack's recipe, per processor kind: `tiles` cuts at most `maxTiles` tiles
 * (1: GotOcr2's one-tile view, the whole image resized to a tile, which has no thumbnail), `smart_resize` resizes
 * within the detail's pixel bounds, `fixed` reads every image the same way. Pure; the vision cache keys on the same
 * fields (detailKey), so an image at two details is two cache entries and one at the same detail is one.
 */
import type { ImageRecipe } from "../../../shared/index.js";
import type { ImageDetail } from "../types.js";

export function detailedRecipe(recipe: ImageRecipe, detail: ImageDetail | undefined): ImageRecipe {
  if (!detail) return recipe;
  if (recipe.processor === "smart_resize") {
    return {
      ...recipe,
      min_pixels: detail.minPixels ?? recipe.min_pixels,
      max_pixels: detail.maxPixels ?? recipe.max_pixels,
    };
  }
  if (recipe.processor === "tiles" && detail.maxTiles !== undefined) {
    const maxTiles = Math.min(recipe.max_tiles, detail.maxTiles);
    return { ...recipe, min_tiles: Math.min(recipe.min_tiles, maxTiles), max_tiles: maxTiles };
  }
  return recipe;
}

/** The part of a detail that changes the visual tokens (the level alone does not: a fixed pack ignores it). */
export function detailKey(detail: ImageDetail | undefined): [number | null, number | null, number | null] {
  return [detail?.minPixels ?? null, detail?.maxPixels ?? null, detail?.maxTiles ?? null];
}
