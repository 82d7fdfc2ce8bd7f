/**
 * The `tiles` processor, InternVL's GotOcr2 tiling: the image resized to the best grid of tiles for its aspect ratio
 * (plan-tiles.ts), cut row-major with a thumbnail after (cut-tiles.ts), each tile normalised (pixel-values.ts).
 * `low` detail is GotOcr2's one-tile view (the whole image resized to a tile, no thumbnail: 256 tokens for InternVL).
 */
import { InvalidRequestError, type TiledImageRecipe, type TokenTile } from "../../../../shared/index.js";
import { floatTensor } from "../../onnx-sessions.js";
import type { DecodedImage } from "../../types.js";
import type { DetailContext, DetailRequest, ImageProcessor, VisionInput } from "../image-processor.js";
import { cutTiles } from "./cut-tiles.js";
import { toPixelValues } from "./pixel-values.js";
import { planTiles } from "./plan-tiles.js";

export function tilesProcessor(recipe: TiledImageRecipe): ImageProcessor {
  return {
    recipe,
    recipeProblem: () => tiledRecipeProblem(recipe),
    visionInputNames: ["pixel_values"],
    decodeSize: undefined,
    warmUpSize: recipe.tile,
    resolveDetail(request, policy) {
      refusePixelBounds(request, policy);
      return request.level === "low" ? { level: request.level, maxTiles: 1 } : { level: request.level };
    },
    withDetail(detail) {
      if (detail?.maxTiles === undefined) return this;
      const maxTiles = Math.min(recipe.max_tiles, detail.maxTiles);
      return tilesProcessor({ ...recipe, min_tiles: Math.min(recipe.min_tiles, maxTiles), max_tiles: maxTiles });
    },
    process: (image) => tiledInput(image, recipe),
    tokenLayout: (width, height) => tiledLayout(width, height, recipe),
  };
}

/** What tiling recipes must agree on (the `fixed` kind adds its own rule). */
export function tiledRecipeProblem(r: TiledImageRecipe): string | null {
  if (r.grid.rows * r.grid.cols !== r.tokens_per_tile)
    return `image.grid is ${r.grid.rows}x${r.grid.cols} but tokens_per_tile is ${r.tokens_per_tile}`;
  if (r.min_tiles > r.max_tiles) return "image.min_tiles exceeds max_tiles";
  return null;
}

/** A tiling processor has no pixel budget: `stitch.min_pixels` / `stitch.max_pixels` are refused, not ignored. */
export function refusePixelBounds(request: DetailRequest, policy: DetailContext): void {
  if (request.minPixels === undefined && request.maxPixels === undefined) return;
  throw new InvalidRequestError(
    `${policy.packName} cuts images into fixed tiles; min_pixels and max_pixels do not apply`,
    "image_detail_unsupported",
    request.maxPixels !== undefined ? "stitch.max_pixels" : "stitch.min_pixels",
  );
}

/** The tiles as the graph's one input: planar float32 [tiles, 3, height, width]. */
export async function tiledInput(image: DecodedImage, recipe: TiledImageRecipe): Promise<VisionInput> {
  const tiles = await cutTiles(image, recipe);
  const { width, height } = recipe.tile;
  return {
    feeds: { pixel_values: floatTensor(toPixelValues(tiles, recipe), [tiles.length, 3, height, width]) },
    visualTokens: tiles.length * recipe.tokens_per_tile,
    grid: null,
  };
}

export function tiledLayout(width: number, height: number, recipe: TiledImageRecipe): TokenTile[] {
  const { rows, cols } = recipe.grid;
  const plan = planTiles(width, height, recipe);
  const tiles: TokenTile[] = [];
  for (let r = 0; r < plan.rows; r++) {
    for (let c = 0; c < plan.cols; c++) {
      tiles.push({ x: c / plan.cols, y: r / plan.rows, width: 1 / plan.cols, height: 1 / plan.rows, rows, cols });
    }
  }
  if (plan.thumbnail) tiles.push({ x: 0, y: 0, width: 1, height: 1, rows, cols });
  return tiles;
}
