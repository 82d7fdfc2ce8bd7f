/**
 * Which grid of tiles an image becomes: a port of transformers' GotOcr2 `get_optimal_tiled_canvas` (InternVL's
 * `crop_to_patches`), so the engine cuts the same tiles, and counts the same visual tokens, as the model was trained
 * on. Pure: depends on the image's size and the recipe only, never on its pixels.
 */
import type { TiledImageRecipe } from "../../../../shared/index.js";

export interface TilePlan {
  /** Tiles across and down: the image is resized to (cols × tile.width) × (rows × tile.height) and cut row-major. */
  cols: number;
  rows: number;
  /** cols × rows. */
  tiles: number;
  /** Whether a tile-sized resize of the whole image follows the tiles. */
  thumbnail: boolean;
}

type GridRecipe = Pick<TiledImageRecipe, "tile" | "min_tiles" | "max_tiles" | "thumbnail">;

export function planTiles(width: number, height: number, recipe: GridRecipe): TilePlan {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new Error(`image size must be positive integers (got ${width}x${height})`);
  }
  // GotOcr2ImageProcessor.preprocess only crops when max_patches > 1; otherwise the whole image is resized to one
  // tile, which is the 1×1 grid anyway.
  const [cols, rows] = recipe.max_tiles > 1 ? optimalGrid(width, height, recipe) : [1, 1];
  const tiles = cols * rows;
  // crop_image_to_patches appends the thumbnail only when there is more than one tile.
  return { cols, rows, tiles, thumbnail: recipe.thumbnail && tiles > 1 };
}

/**
 * The visual tokens the image costs: (tiles + thumbnail) × tokens_per_tile. A pure function of the size so budgets
 * can be checked before any pixel is decoded, and a ranking's length checked against it.
 */
export function visualTokenCount(
  width: number,
  height: number,
  recipe: GridRecipe & Pick<TiledImageRecipe, "tokens_per_tile">,
): number {
  const plan = planTiles(width, height, recipe);
  return (plan.tiles + (plan.thumbnail ? 1 : 0)) * recipe.tokens_per_tile;
}

/**
 * `get_optimal_tiled_canvas`, line for line: the grid whose cols/rows ratio is nearest the image's width/height.
 * A tie (same |difference|, compared exactly, as Python's floats are the same IEEE doubles as ours) goes to the later
 * grid in the candidate order, i.e. the one with more tiles, but only while the image's area is more than half the
 * area those tiles cover. Note the rule reads the area of the candidate grid, not of the grid it would replace.
 */
function optimalGrid(width: number, height: number, recipe: GridRecipe): [cols: number, rows: number] {
  const aspect = width / height;
  const area = width * height;
  const tileArea = recipe.tile.height * recipe.tile.width;
  let bestDiff = Number.POSITIVE_INFINITY;
  let best: [number, number] = [1, 1];
  for (const [cols, rows] of arrangements(recipe.min_tiles, recipe.max_tiles)) {
    const diff = Math.abs(aspect - cols / rows);
    if (diff < bestDiff) {
      bestDiff = diff;
      best = [cols, rows];
    } else if (diff === bestDiff && area > 0.5 * tileArea * cols * rows) {
      best = [cols, rows];
    }
  }
  return best;
}

const arrangementCache = new Map<string, ReadonlyArray<readonly [number, number]>>();

/**
 * `get_all_supported_aspect_ratios`: every (cols, rows) with min ≤ cols·rows ≤ max, enumerated cols-major and then
 * stably sorted by tile count. The order matters: it decides which of two equally good grids the tie rule sees last.
 * (Array.prototype.sort is stable, as Python's sorted is.)
 */
function arrangements(min: number, max: number): ReadonlyArray<readonly [number, number]> {
  const key = `${min}:${max}`;
  let list = arrangementCache.get(key);
  if (!list) {
    const found: Array<readonly [number, number]> = [];
    for (let cols = 1; cols <= max; cols++) {
      for (let rows = 1; rows <= max; rows++) {
        if (cols * rows <= max && cols * rows >= min) found.push([cols, rows]);
      }
    }
    list = found.sort((a, b) => a[0] * a[1] - b[0] * b[1]);
    arrangementCache.set(key, list);
  }
  return list;
}
