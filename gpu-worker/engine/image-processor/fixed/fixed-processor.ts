/**
 * The `fixed` processor (the embedded pair): every image stretched to one tile, no thumbnail, at every detail level.
 * The image is decoded straight at the tile size (decodeSize), so the tiling below is a plain copy.
 */
import type { ImageRecipe, TiledImageRecipe } from "../../../../shared/index.js";
import type { ImageProcessor } from "../image-processor.js";
import { refusePixelBounds, tiledInput, tiledLayout, tiledRecipeProblem } from "../tiles/tiles-processor.js";

export function fixedProcessor(recipe: TiledImageRecipe): ImageProcessor {
  const view = oneTile(recipe);
  return {
    recipe,
    recipeProblem: () =>
      tiledRecipeProblem(recipe) ??
      (recipe.max_tiles !== 1 || recipe.thumbnail
        ? "the fixed image processor makes exactly one tile and no thumbnail"
        : null),
    visionInputNames: ["pixel_values"],
    decodeSize: recipe.tile,
    warmUpSize: recipe.tile,
    resolveDetail(request, policy) {
      refusePixelBounds(request, policy);
      return { level: request.level };
    },
    withDetail() {
      return this;
    },
    process: (image) => tiledInput(image, view),
    tokenLayout: (width, height) => tiledLayout(width, height, view),
  };
}

/** The recipe's one-tile view: GotOcr2 with a single tile resizes the whole image to it and adds no thumbnail. */
export function oneTile<R extends TiledImageRecipe>(recipe: R): R {
  return { ...recipe, min_tiles: 1, max_tiles: 1, thumbnail: false };
}

/** The token count of every image under the fixed processor (the benchmarks' pair): one tile's. */
export function fixedVisualTokens(recipe: ImageRecipe): number {
  if (recipe.processor !== "fixed") throw new Error(`the ${recipe.processor} processor gives each image its own count`);
  return recipe.tokens_per_tile;
}
