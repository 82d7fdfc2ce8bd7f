/**
 * Test support shared by every part: the image recipes of the real families, as their checkpoints ship them, and a
 * function's metering of a given accelerator time.
 */
import type { Metering } from "./schemas/metering.js";
import type { SmartResizeRecipe, TiledImageRecipe } from "./schemas/model-pack.js";

/** What a function reports for `accelerator_ms` on `gpu_class` (the rest: one token of each kind, priced at nothing). */
export const meteringOf = (accelerator_ms: number, gpu_class: string): Metering => ({
  accelerator_ms,
  flops: 0,
  visual_tokens_total: 64,
  visual_tokens_kept: 64,
  visual_tokens_cached: 0,
  prompt_tokens: 1,
  completion_tokens: 1,
  gpu_class,
});

/** InternVL3's image recipe as its checkpoints ship it (448-px tiles, up to 12, ImageNet statistics). */
export const INTERNVL3_RECIPE: TiledImageRecipe = {
  processor: "tiles",
  tile: { width: 448, height: 448 },
  min_tiles: 1,
  max_tiles: 12,
  thumbnail: true,
  resample: "bicubic",
  rescale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  patch_px: 14,
  pixel_shuffle: 0.5,
  grid: { rows: 16, cols: 16 },
  tokens_per_tile: 256,
};

/** Qwen2.5-VL's own processor bounds and statistics (preprocessor_config.json): 56² .. 28² · 1280 pixels. */
export const QWEN25VL_RECIPE: SmartResizeRecipe = {
  processor: "smart_resize",
  patch_px: 14,
  merge: 2,
  temporal_patch: 2,
  min_pixels: 56 * 56,
  max_pixels: 28 * 28 * 1280,
  window_px: 112,
  resample: "bicubic",
  rescale: 1 / 255,
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
};
