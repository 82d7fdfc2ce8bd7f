/**
 * Qwen2-VL's `smart_resize` (transformers 4.57.1, models/qwen2_vl/image_processing_qwen2_vl.py), ported line for
 * line: the image keeps its aspect ratio as nearly as it can while both sides become multiples of
 * factor = patch_px · merge and the area lands in [min_pixels, max_pixels]. Checked against transformers on ~1,500
 * (height, width) pairs under four settings (smart-resize.test.ts).
 *
 * Not taken from transformers.js (`smart_resize` in src/image_processors_utils.js, v4.3.2): that one rounds halves
 * up (Math.round) where Python rounds them to even, and first scales images with a side under `factor` up to
 * `factor`, which 4.57.1 does not do, so it gives other sizes (e.g. 70 px: 84 there, 56 here).
 */
import { InvalidRequestError, type SmartResizeRecipe } from "../../../../shared/index.js";
import { type RgbImage, resizeRgb } from "../tiles/cut-tiles.js";

/** What the size computation reads from the recipe; min/max_pixels may be a request's image detail instead. */
export type SmartResizeBounds = Pick<SmartResizeRecipe, "patch_px" | "merge" | "min_pixels" | "max_pixels">;

/** transformers refuses images whose long side is more than this many times the short one. */
export const MAX_ASPECT_RATIO = 200;

/** The resized height and width, both multiples of patch_px · merge. Throws `image_aspect_ratio` (400) past 200:1. */
export function smartResize(
  height: number,
  width: number,
  recipe: SmartResizeBounds,
): { height: number; width: number } {
  if (!Number.isSafeInteger(height) || !Number.isSafeInteger(width) || height < 1 || width < 1) {
    throw new RangeError(`image size must be positive integers (got ${width}x${height})`);
  }
  const factor = recipe.patch_px * recipe.merge;
  const { min_pixels: minPixels, max_pixels: maxPixels } = recipe;
  const ratio = Math.max(height, width) / Math.min(height, width);
  if (ratio > MAX_ASPECT_RATIO) {
    throw new InvalidRequestError(
      `the image's aspect ratio must be at most ${MAX_ASPECT_RATIO}:1 (got ${width}x${height}, ${ratio}:1)`,
      "image_aspect_ratio",
    );
  }
  let hBar = roundHalfEven(height / factor) * factor;
  let wBar = roundHalfEven(width / factor) * factor;
  if (hBar * wBar > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    hBar = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wBar = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    hBar = Math.ceil((height * beta) / factor) * factor;
    wBar = Math.ceil((width * beta) / factor) * factor;
  }
  return { height: hBar, width: wBar };
}

/** (t, h, w): image_grid_thw in patches, or the same grid in merged (visual) tokens. */
export interface Grid {
  t: number;
  h: number;
  w: number;
}

export interface SmartResizeGrid {
  resized: { height: number; width: number };
  /** transformers' image_grid_thw: t = 1 for a still image, h and w in patch_px patches. */
  grid: Grid;
  /** The grid in visual tokens (merge × merge patches each): what M-RoPE and the prompt's span count. */
  merged: Grid;
  /** Patches P = t · h · w: the rows of pixel_values and vision_position_ids. */
  patches: number;
  /** Visual tokens P / merge²: the image's span in the prompt and the rows of visual_embeds. */
  tokens: number;
}

/** The grid and token count an image of this size gets, without touching pixels (for budgets and cache keys). */
export function smartResizeGrid(
  height: number,
  width: number,
  recipe: SmartResizeBounds & Partial<Pick<SmartResizeRecipe, "temporal_patch">>,
): SmartResizeGrid {
  const resized = smartResize(height, width, recipe);
  // one still image is padded to temporal_patch frames by repeating it: ceil(1 / temporal_patch) = 1 group
  const t = 1;
  const grid = { t, h: resized.height / recipe.patch_px, w: resized.width / recipe.patch_px };
  const merged = { t, h: grid.h / recipe.merge, w: grid.w / recipe.merge };
  return { resized, grid, merged, patches: t * grid.h * grid.w, tokens: t * merged.h * merged.w };
}

/**
 * The image resized to smart_resize's size with PIL's sample grid (`resizeRgb`, the resize the tiles processor
 * uses; measured against transformers in smart-resize.test.ts), packed width × height × 3.
 */
export async function resizeToSmartSize(
  image: RgbImage,
  recipe: SmartResizeBounds & Pick<SmartResizeRecipe, "resample">,
): Promise<RgbImage> {
  const { height, width } = smartResize(image.height, image.width, recipe);
  if (image.rgb.length !== image.width * image.height * 3) {
    throw new Error(`rgb must be ${image.width}x${image.height}x3 bytes (got ${image.rgb.length})`);
  }
  const { data, stride } = await resizeRgb(image, width, height, recipe.resample);
  if (stride === width && data.length === width * height * 3) return { width, height, rgb: data };
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) rgb.set(data.subarray(y * stride * 3, (y * stride + width) * 3), y * width * 3);
  return { width, height, rgb };
}

/** Python's round() on a float: halves go to the even neighbour (round(2.5) = 2, round(0.5) = 0). */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor; // exact for the magnitudes here
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
