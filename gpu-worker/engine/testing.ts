/** Test support: the embedded packs' location and scene images as the engine receives them. */
import { generateItem } from "../../scene-generator/index.js";
import type { DecodedImage } from "./types.js";

export const PACKS_DIR = process.env.STITCH_PACKS_DIR ?? "model-packs";

/** The generator's image, already at the packs' input size (what decode-image would hand over). */
export function sceneImage(seed: number, index: number): DecodedImage {
  const item = generateItem(seed, index);
  return { hash: `scene-${seed}-${index}`, width: item.side, height: item.side, rgb: item.rgb };
}

/** Packs exported from tiny random-weight models of real families (committed test fixtures). */
export const FIXTURE_PACKS_DIR = "test/fixtures/packs";
