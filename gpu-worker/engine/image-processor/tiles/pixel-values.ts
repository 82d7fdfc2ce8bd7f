/**
 * Tiles to the vision graph's input: planar float32 [tiles, 3, height, width], value = (u · rescale − mean[c]) /
 * std[c], bit-identical to transformers' rescale + normalize.
 */
import type { TiledImageRecipe } from "../../../../shared/index.js";

type NormaliseRecipe = Pick<TiledImageRecipe, "tile" | "rescale" | "mean" | "std">;

export function toPixelValues(tiles: readonly Uint8Array[], recipe: NormaliseRecipe): Float32Array {
  const plane = recipe.tile.width * recipe.tile.height;
  const tables = normaliseTables(recipe);
  const out = new Float32Array(tiles.length * 3 * plane);
  tiles.forEach((rgb, t) => {
    if (rgb.length !== plane * 3) {
      throw new Error(`tile ${t} must be ${recipe.tile.width}x${recipe.tile.height}x3 bytes (got ${rgb.length})`);
    }
    for (let c = 0; c < 3; c++) {
      const table = tables[c] as Float32Array;
      const channel = out.subarray((t * 3 + c) * plane, (t * 3 + c + 1) * plane);
      for (let i = 0; i < plane; i++) channel[i] = table[rgb[i * 3 + c] as number] as number;
    }
  });
  return out;
}

/**
 * The normalised value of each of the 256 byte values, per channel: a byte has only 256 values, so a table gives
 * the same floats as the formula for a fraction of the divisions. The roundings are transformers': rescale is
 * float64 u · scale cast to float32; normalize is float32 (x − mean) / std with mean and std cast to float32.
 * (Each float32 op done in double and rounded with Math.fround is the correctly rounded float32 result.)
 */
export function normaliseTables(recipe: Pick<TiledImageRecipe, "rescale" | "mean" | "std">): Float32Array[] {
  return [0, 1, 2].map((c) => {
    const mean = Math.fround(recipe.mean[c] as number);
    const std = Math.fround(recipe.std[c] as number);
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) table[v] = Math.fround(Math.fround(v * recipe.rescale) - mean) / std;
    return table;
  });
}
