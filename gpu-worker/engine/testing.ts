/** Test support: the embedded packs' location and scene images as the engine receives them. */

import { readFileSync } from "node:fs";
import sharp from "sharp";
import { generateItem } from "../../scene-generator/index.js";
import type { ImageRecipe } from "../../shared/index.js";
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

export { INTERNVL3_RECIPE, QWEN25VL_RECIPE } from "../../shared/testing.js";

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
