import { describe, expect, it } from "vitest";
import type { SmartResizeRecipe, StitchError, TiledImageRecipe } from "../shared/index.js";
import { smartResizeGrid } from "./engine/image-processor/smart-resize/smart-resize.js";
import { visualTokenCount } from "./engine/image-processor/tiles/plan-tiles.js";
import { INTERNVL3_RECIPE, packInfo, QWEN25VL_RECIPE } from "./engine/testing.js";
import type { PackInfo } from "./engine/types.js";
import { DEFAULT_DETAIL_POLICY, resolveImageDetail } from "./resolve-detail.js";

const pack = (image: PackInfo["image"]) => packInfo(image);
const tiles = pack(INTERNVL3_RECIPE);
const qwenRecipe = QWEN25VL_RECIPE;
const qwen = pack(qwenRecipe);
const fixed = pack({ ...INTERNVL3_RECIPE, processor: "fixed", max_tiles: 1, thumbnail: false });

const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return { code: (err as StitchError).code, param: (err as StitchError).param };
  }
  throw new Error("not refused");
};

describe("image detail per processor kind", () => {
  it("tiles: low is one tile without the thumbnail (256 tokens), high the recipe's grid and thumbnail", () => {
    const low = resolveImageDetail({ detail: "low" }, tiles);
    const high = resolveImageDetail({ detail: "high" }, tiles);
    expect(low).toEqual({ level: "low", maxTiles: 1 });
    expect(high).toEqual({ level: "high" });
    // 1200 × 400 is cut 3 × 1 (plus the thumbnail) at the recipe's detail.
    const tokens = (d: typeof low) =>
      visualTokenCount(1200, 400, tiles.processor.withDetail(d).recipe as TiledImageRecipe);
    expect(tokens(high)).toBe(4 * 256);
    expect(tokens(low)).toBe(256);
  });

  it("smart_resize: low resizes to at most the low budget, high within the pack's own bounds", () => {
    const low = resolveImageDetail({ detail: "low" }, qwen);
    const high = resolveImageDetail({ detail: "high" }, qwen);
    expect(low).toEqual({ level: "low", minPixels: 3136, maxPixels: 448 * 448 });
    expect(high).toEqual({ level: "high", minPixels: 3136, maxPixels: 28 * 28 * 1280 });
    const tokens = (d: typeof low) =>
      smartResizeGrid(1080, 1920, qwen.processor.withDetail(d).recipe as SmartResizeRecipe);
    expect(tokens(low).tokens).toBeLessThanOrEqual(256);
    expect(tokens(high).tokens).toBeGreaterThan(1000);
  });

  it("clamps the low budget into the pack's bounds (a pack smaller than it reads the same at both levels)", () => {
    const small = pack({ ...qwenRecipe, max_pixels: 62_720 });
    expect(resolveImageDetail({ detail: "low" }, small).maxPixels).toBe(62_720);
    const lowest = resolveImageDetail({ detail: "low" }, small, { default: "high", lowMaxPixels: 100 });
    expect(lowest.maxPixels).toBe(qwenRecipe.min_pixels);
  });

  it("auto is the deployment's default", () => {
    expect(resolveImageDetail({ detail: "auto" }, tiles).level).toBe(DEFAULT_DETAIL_POLICY.default);
    expect(resolveImageDetail({ detail: "auto" }, tiles, { default: "low", lowMaxPixels: 1 })).toEqual({
      level: "low",
      maxTiles: 1,
    });
  });

  it("fixed: the same single tile at every level", () => {
    for (const detail of ["low", "high"] as const) {
      const d = resolveImageDetail({ detail }, fixed);
      expect(fixed.processor.withDetail(d).recipe).toEqual(fixed.image);
    }
  });

  it("min_pixels and max_pixels narrow the level's range and must lie within it", () => {
    expect(resolveImageDetail({ detail: "low", max_pixels: 50_000 }, qwen)).toEqual({
      level: "low",
      minPixels: 3136,
      maxPixels: 50_000,
    });
    expect(refusal(() => resolveImageDetail({ detail: "low", max_pixels: 448 * 448 + 1 }, qwen))).toEqual({
      code: "invalid_image_detail",
      param: "stitch.max_pixels",
    });
    expect(refusal(() => resolveImageDetail({ detail: "low", min_pixels: 300_000 }, qwen))).toEqual({
      code: "invalid_image_detail",
      param: "stitch.min_pixels",
    });
    expect(resolveImageDetail({ detail: "high", max_pixels: 1_000_000 }, qwen).maxPixels).toBe(1_000_000);
    expect(refusal(() => resolveImageDetail({ detail: "low", max_pixels: 1000 }, tiles))).toEqual({
      code: "image_detail_unsupported",
      param: "stitch.max_pixels",
    });
  });

  it("takes the budget the small function forwarded as is, within the pack's bounds", () => {
    const forwarded = { detail: "low" as const, min_pixels: 3136, max_pixels: 300_000 };
    expect(resolveImageDetail(forwarded, qwen, DEFAULT_DETAIL_POLICY, true).maxPixels).toBe(300_000);
    expect(resolveImageDetail({ detail: "low" }, qwen, { default: "high", lowMaxPixels: 12_544 }, true).maxPixels).toBe(
      12_544,
    );
  });
});
