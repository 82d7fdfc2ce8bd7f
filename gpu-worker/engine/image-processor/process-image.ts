/**
 * Stage "preprocess": a decoded image → the vision graph's inputs, as the pack's recipe says (the family's own
 * processor: GotOcr2 tiling for InternVL, one stretched tile for the embedded pair). The tiles are cut in
 * transformers' order, so visual token i means the same region for every pack of the same recipe. Which
 * processor runs is the recipe's `processor` field, never a family name.
 */
import ort from "onnxruntime-node";
import type { ImageRecipe, SmartResizeRecipe, TiledImageRecipe, TokenTile } from "../../../shared/index.js";
import { floatTensor } from "../onnx-sessions.js";
import type { MergedGrid } from "../positions/mrope.js";
import type { DecodedImage } from "../types.js";
import { cutTiles } from "./cut-tiles.js";
import { smartResizePixelValues } from "./patchify.js";
import { toPixelValues } from "./pixel-values.js";
import { planTiles } from "./plan-tiles.js";
import { smartResizeGrid } from "./smart-resize.js";
import { visionInputs } from "./vision-inputs.js";

export interface VisionInput {
  /** The vision graph's feeds. */
  feeds: Record<string, ort.Tensor>;
  /** Visual tokens the graph will return. */
  visualTokens: number;
  /** The tokens' (t, h, w) grid, for processors whose model reads 3-D positions (smart_resize); else null. */
  grid: MergedGrid | null;
}

export async function processImage(image: DecodedImage, recipe: ImageRecipe): Promise<VisionInput> {
  if (recipe.processor === "smart_resize") return smartResizeInput(image, recipe);
  const tiles = await cutTiles(image, recipe);
  const { width, height } = recipe.tile;
  return {
    feeds: { pixel_values: floatTensor(toPixelValues(tiles, recipe), [tiles.length, 3, height, width]) },
    visualTokens: tiles.length * recipe.tokens_per_tile,
    grid: null,
  };
}

/** Qwen2-VL: the patches, and the integer inputs of the tower (patch positions, windows) the host computes. */
async function smartResizeInput(image: DecodedImage, recipe: SmartResizeRecipe): Promise<VisionInput> {
  const { pixelValues, dims, grid, merged, tokens } = await smartResizePixelValues(image, recipe);
  const inputs = visionInputs(grid, recipe);
  const int64 = ({ data, dims }: { data: Int32Array; dims: number[] }) =>
    new ort.Tensor(
      "int64",
      BigInt64Array.from(data, (v) => BigInt(v)),
      dims,
    );
  return {
    feeds: {
      pixel_values: floatTensor(pixelValues, dims),
      vision_position_ids: int64(inputs.vision_position_ids),
      window_index: int64(inputs.window_index),
      window_segments: int64(inputs.window_segments),
    },
    visualTokens: tokens,
    grid: merged,
  };
}

/** Where the visual tokens sit: one rectangle per tile in token order, each a rows × cols grid of tokens. */
export function tokenLayout(width: number, height: number, recipe: ImageRecipe): TokenTile[] {
  if (recipe.processor === "smart_resize") {
    const { merged } = smartResizeGrid(height, width, recipe);
    return [{ x: 0, y: 0, width: 1, height: 1, rows: merged.h, cols: merged.w }];
  }
  return tiledLayout(width, height, recipe);
}

function tiledLayout(width: number, height: number, recipe: TiledImageRecipe): TokenTile[] {
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

/** The size decoding resizes to when the processor stretches every image to one tile; undefined: keep the size. */
export function decodeSize(recipe: ImageRecipe): { width: number; height: number } | undefined {
  return recipe.processor === "fixed" ? recipe.tile : undefined;
}

/** A plain image the processor accepts, for warming the sessions up at start. */
export function warmUpSize(recipe: ImageRecipe): { width: number; height: number } {
  if (recipe.processor === "smart_resize") {
    const side = recipe.patch_px * recipe.merge * 8;
    return { width: side, height: side };
  }
  return recipe.tile;
}

/** The token count of every image under a processor that stretches each image to one tile (the benchmarks' pair). */
export function fixedVisualTokens(recipe: ImageRecipe): number {
  if (recipe.processor !== "fixed") throw new Error(`the ${recipe.processor} processor gives each image its own count`);
  return recipe.tokens_per_tile;
}
