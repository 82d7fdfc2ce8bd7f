import { describe, expect, it } from "vitest";
import type { ImageRecipe } from "../../../shared/index.js";
import { INTERNVL3_RECIPE, QWEN25VL_RECIPE, sceneImage } from "../testing.js";
import { imageProcessor } from "./registry.js";

const FIXED = { ...INTERNVL3_RECIPE, processor: "fixed" as const, max_tiles: 1, thumbnail: false };
const policy = { packName: "p", lowMaxPixels: 448 * 448, forwarded: false };

describe("the image processor chosen by the recipe's kind", () => {
  it.each<[string, ImageRecipe, string[]]>([
    ["tiles", INTERNVL3_RECIPE, ["pixel_values"]],
    ["fixed", FIXED, ["pixel_values"]],
    ["smart_resize", QWEN25VL_RECIPE, ["pixel_values", "vision_position_ids", "window_index", "window_segments"]],
  ])("%s: its own vision graph inputs, and a consistent recipe passes", (_kind, recipe, inputs) => {
    const processor = imageProcessor(recipe);
    expect(processor.recipe).toBe(recipe);
    expect(processor.visionInputNames).toEqual(inputs);
    expect(processor.recipeProblem()).toBeNull();
  });

  it.each<[string, ImageRecipe, RegExp]>([
    ["tiles with a grid that is not tokens_per_tile", { ...INTERNVL3_RECIPE, tokens_per_tile: 255 }, /16x16/],
    ["tiles with min_tiles over max_tiles", { ...INTERNVL3_RECIPE, min_tiles: 13 }, /min_tiles exceeds/],
    ["fixed with a thumbnail", { ...FIXED, thumbnail: true }, /exactly one tile/],
    ["fixed with more than one tile", { ...FIXED, max_tiles: 2 }, /exactly one tile/],
    ["smart_resize with min_pixels over max_pixels", { ...QWEN25VL_RECIPE, min_pixels: 10 ** 7 }, /min_pixels/],
  ])("names the problem of %s", (_what, recipe, problem) => {
    expect(imageProcessor(recipe).recipeProblem()).toMatch(problem);
  });

  it("only the fixed processor decodes straight to its tile", () => {
    expect(imageProcessor(FIXED).decodeSize).toEqual(FIXED.tile);
    expect(imageProcessor(INTERNVL3_RECIPE).decodeSize).toBeUndefined();
    expect(imageProcessor(QWEN25VL_RECIPE).decodeSize).toBeUndefined();
  });

  it("a detail that changes nothing keeps the processor; a narrowed one is a new processor on the narrowed recipe", () => {
    const tiles = imageProcessor(INTERNVL3_RECIPE);
    expect(tiles.withDetail({ level: "high" })).toBe(tiles);
    expect(tiles.withDetail({ level: "low", maxTiles: 1 }).recipe).toMatchObject({ min_tiles: 1, max_tiles: 1 });
    const fixed = imageProcessor(FIXED);
    expect(fixed.withDetail(fixed.resolveDetail({ level: "low" }, policy))).toBe(fixed);
  });

  it("each kind's warm-up image goes through its own processor", async () => {
    for (const recipe of [INTERNVL3_RECIPE, FIXED, QWEN25VL_RECIPE] as ImageRecipe[]) {
      const processor = imageProcessor(recipe);
      const { width, height } = processor.warmUpSize;
      const image = { ...sceneImage(1, 0), width, height, rgb: new Uint8Array(width * height * 3) };
      const input = await processor.process(image);
      expect(Object.keys(input.feeds).sort()).toEqual([...processor.visionInputNames].sort());
      expect(input.visualTokens).toBeGreaterThan(0);
      expect(input.grid === null).toBe(recipe.processor !== "smart_resize");
    }
  });
});
