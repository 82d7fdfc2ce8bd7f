/**
 * Where the visual tokens of an image sit: one rectangle per tile, in the order the tokens come (tiles row-major,
 * then the thumbnail over the whole image), each a grid of the recipe's rows × cols tokens. Pure: from the image's
 * size and the recipe, so the small function can describe an image it never ran a model on.
 */
import type { ImageRecipe, TokenTile } from "../../../shared/index.js";
import { planTiles } from "./plan-tiles.js";

export function tokenLayout(width: number, height: number, recipe: ImageRecipe): TokenTile[] {
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
