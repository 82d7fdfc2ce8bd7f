/** Test support: the embedded packs' location and scene images as the engine receives them. */

import { readFileSync } from "node:fs";
import sharp from "sharp";
import { generateItem } from "../../scene-generator/index.js";
import type { ImageRecipe, SmartResizeRecipe, TiledImageRecipe } from "../../shared/index.js";
import { imageProcessor } from "./image-processor/registry.js";
import type { DecodedImage, PackInfo } from "./types.js";

export const PACKS_DIR = process.env.STITCH_PACKS_DIR ?? "model-packs";

/** The generator's image, already at the packs' input size (what decode-image would hand over). */
export function sceneImage(seed: number, index: number): DecodedImage {
  const item = generateItem(seed, index);
  return { hash: `scene-${seed}-${index}`, width: item.side, height: item.side, rgb: item.rgb };
}

/** Packs exported from tiny random-weight models of real families (committed test fixtures). */
export const FIXTURE_PACKS_DIR = "test/fixtures/packs";

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

/** A pack's manifest facts for checks that read only its recipe and split layers (no weights). */
export const packInfo = (image: ImageRecipe, splitLayers = [1]): PackInfo => ({
  name: "p",
  version: "1",
  family: "f",
  image,
  processor: imageProcessor(image),
  splitLayers,
  layers: 2,
});

/** A photograph of test/fixtures/photos/ decoded to packed RGB by sharp, as the engine's decode stage does. */
export async function decodePhoto(file: string): Promise<{ width: number; height: number; rgb: Uint8Array }> {
  const path = new URL(`../../test/fixtures/photos/${file}`, import.meta.url);
  const { data, info } = await sharp(readFileSync(path)).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgb: new Uint8Array(data) };
}
