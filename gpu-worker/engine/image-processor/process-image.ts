/**
 * Stage "preprocess": a decoded image → the vision graph's input, as the pack's recipe says (the family's own
 * processor: GotOcr2 tiling for InternVL, one stretched tile for the embedded pair). The tiles are cut in
 * transformers' order, so visual token i means the same region for every pack of the same recipe.
 */
import type { ImageRecipe } from "../../../shared/index.js";
import type { DecodedImage } from "../types.js";
import { cutTiles } from "./cut-tiles.js";
import { toPixelValues } from "./pixel-values.js";

export interface PixelValues {
  /** Planar [tiles, 3, tile.height, tile.width], normalised. */
  pixels: Float32Array;
  tiles: number;
}

export async function processImage(image: DecodedImage, recipe: ImageRecipe): Promise<PixelValues> {
  const tiles = await cutTiles(image, recipe);
  return { pixels: toPixelValues(tiles, recipe), tiles: tiles.length };
}
