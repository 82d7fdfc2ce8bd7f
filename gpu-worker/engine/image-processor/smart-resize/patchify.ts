/**
 * The resized image to the smart_resize vision graph's `pixel_values` [P, C · T · p · p], in the order
 * transformers' Qwen2VLImageProcessor._preprocess makes (4.57.1):
 *
 *   frames [T, C, H, W] (the still image repeated to temporal_patch frames)
 *     .reshape(grid_t, T, C, gh / m, m, p, gw / m, m, p)
 *     .transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)            → [grid_t, gh / m, gw / m, m, m, C, T, p, p]
 *     .reshape(grid_t · gh · gw, C · T · p · p)
 *
 * so patches run over merge blocks row-major, and inside a block over its m × m patches row-major (the merger's
 * 2×2 groups are consecutive rows); each row is channel, then frame, then the patch's pixels row-major.
 * Bit-identical to transformers' pixel_values on its own resized image (patchify.test.ts).
 */
import type { SmartResizeRecipe } from "../../../../shared/index.js";
import type { RgbImage } from "../tiles/cut-tiles.js";
import { normaliseTables } from "../tiles/pixel-values.js";
import { mergeOrder } from "./merge-order.js";
import { resizeToSmartSize, type SmartResizeGrid, smartResizeGrid } from "./smart-resize.js";

type PatchRecipe = Pick<SmartResizeRecipe, "patch_px" | "merge" | "temporal_patch">;
type NormaliseRecipe = Pick<SmartResizeRecipe, "rescale" | "mean" | "std">;

/** A normalised image, planar float32 [3, height, width]. */
export interface PlanarImage {
  width: number;
  height: number;
  data: Float32Array;
}

const CHANNELS = 3;

/** Packed uint8 RGB to planar float32 [3, H, W] with transformers' float32 rescale + normalise (bit-identical). */
export function normalisePlanar(image: RgbImage, recipe: NormaliseRecipe): PlanarImage {
  const { width, height, rgb } = image;
  const plane = width * height;
  if (rgb.length !== plane * CHANNELS) throw new Error(`rgb must be ${width}x${height}x3 bytes (got ${rgb.length})`);
  const tables = normaliseTables(recipe);
  const data = new Float32Array(CHANNELS * plane);
  for (let c = 0; c < CHANNELS; c++) {
    const table = tables[c] as Float32Array;
    const out = data.subarray(c * plane, (c + 1) * plane);
    for (let i = 0; i < plane; i++) out[i] = table[rgb[i * CHANNELS + c] as number] as number;
  }
  return { width, height, data };
}

/** flatten_patches of one still image: Float32Array [P, C · T · p · p], P = (H / p) · (W / p). */
export function patchify(image: PlanarImage, recipe: PatchRecipe): Float32Array {
  const { width, height, data } = image;
  const { patch_px: p, merge: m, temporal_patch: T } = recipe;
  if (data.length !== CHANNELS * width * height) {
    throw new Error(`planar image must be 3x${height}x${width} floats (got ${data.length})`);
  }
  if (height % (p * m) !== 0 || width % (p * m) !== 0) {
    throw new Error(`image ${width}x${height} is not a multiple of patch_px · merge = ${p * m}`);
  }
  const rowLen = CHANNELS * T * p * p;
  const out = new Float32Array((height / p) * (width / p) * rowLen);
  let o = 0;
  for (const [row, col] of mergeOrder(height / p, width / p, m)) o = copyPatch(image, out, o, row * p, col * p, p, T);
  return out;
}

/** Writes one patch's row at `o` (channel, then frame, then its p × p pixels); returns the offset after it. */
function copyPatch(image: PlanarImage, out: Float32Array, o: number, y0: number, x0: number, p: number, T: number) {
  const { width, height, data } = image;
  for (let c = 0; c < CHANNELS; c++) {
    const first = o;
    for (let y = 0; y < p; y++) {
      const start = (c * height + y0 + y) * width + x0;
      out.set(data.subarray(start, start + p), o);
      o += p;
    }
    // the other frames of the still image are the same p × p pixels
    for (let t = 1; t < T; t++) {
      out.copyWithin(o, first, first + p * p);
      o += p * p;
    }
  }
  return o;
}

export interface SmartResizePixelValues extends SmartResizeGrid {
  /** pixel_values [patches, C · T · p · p]. */
  pixelValues: Float32Array;
  dims: [number, number];
}

/**
 * The whole processor for one image: smart_resize (with the request's min/max_pixels when given), PIL-grid resize,
 * normalise, patchify.
 */
export async function smartResizePixelValues(
  image: RgbImage,
  recipe: SmartResizeRecipe,
): Promise<SmartResizePixelValues> {
  const grid = smartResizeGrid(image.height, image.width, recipe);
  const resized = await resizeToSmartSize(image, recipe);
  const pixelValues = patchify(normalisePlanar(resized, recipe), recipe);
  const rowLen = CHANNELS * recipe.temporal_patch * recipe.patch_px * recipe.patch_px;
  return { ...grid, pixelValues, dims: [grid.patches, rowLen] };
}
