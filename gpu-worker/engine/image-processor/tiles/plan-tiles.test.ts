import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { INTERNVL3_RECIPE } from "../../testing.js";
import { oneTile } from "../fixed/fixed-processor.js";
import { planTiles, visualTokenCount } from "./plan-tiles.js";

/** transformers' get_optimal_tiled_canvas on ~3,800 sizes × 5 settings, by model-export/record_image_processor.py. */
const recorded: {
  settings: { tile: { width: number; height: number }; min_tiles: number; max_tiles: number; cases: string }[];
} = JSON.parse(readFileSync(new URL("../canvas-cases.json", import.meta.url), "utf8"));

const internvl3 = INTERNVL3_RECIPE;

describe("planTiles", () => {
  it.each(recorded.settings.map((s) => [`${s.tile.width}x${s.tile.height} tiles ${s.min_tiles}..${s.max_tiles}`, s]))(
    "picks transformers' grid for every recorded size (%s)",
    (_, s) => {
      const recipe = { ...internvl3, tile: s.tile, min_tiles: s.min_tiles, max_tiles: s.max_tiles };
      const wrong: string[] = [];
      const cases = s.cases.split(" ");
      for (const c of cases) {
        const [height, width, cols, rows] = c.split(",").map(Number) as [number, number, number, number];
        const plan = planTiles(width, height, recipe);
        if (plan.cols !== cols || plan.rows !== rows) wrong.push(`${height}x${width}: ${plan.cols}x${plan.rows}`);
      }
      expect(cases.length).toBeGreaterThan(3000);
      expect(wrong).toEqual([]);
    },
  );

  it("breaks equal-ratio ties towards more tiles only while the image covers more than half of them", () => {
    // square images: 1x1, 2x2 and 3x3 have the same ratio; 2x2 once area > 0.5·4·448², 3x3 once > 0.5·9·448²
    expect(planTiles(633, 633, internvl3)).toMatchObject({ cols: 1, rows: 1 }); // 400,689 ≤ 401,408
    expect(planTiles(634, 634, internvl3)).toMatchObject({ cols: 2, rows: 2 }); // 401,956 > 401,408
    expect(planTiles(951, 951, internvl3)).toMatchObject({ cols: 3, rows: 3 }); // 904,401 > 903,168
    // cols is the width direction: a wide image gets more columns
    expect(planTiles(600, 200, internvl3)).toMatchObject({ cols: 3, rows: 1, tiles: 3, thumbnail: true });
  });

  it("adds the thumbnail only when there is more than one tile, and only when the recipe asks", () => {
    expect(planTiles(512, 512, internvl3)).toEqual({ cols: 1, rows: 1, tiles: 1, thumbnail: false });
    expect(planTiles(1000, 500, { ...internvl3, thumbnail: false })).toEqual({
      cols: 2,
      rows: 1,
      tiles: 2,
      thumbnail: false,
    });
  });

  it("is always one tile without thumbnail for the fixed processor", () => {
    const fixed = oneTile({ ...internvl3, processor: "fixed" as const });
    for (const [w, h] of [
      [4000, 100],
      [100, 4000],
      [1000, 1000],
    ] as const) {
      expect(planTiles(w, h, fixed)).toEqual({ cols: 1, rows: 1, tiles: 1, thumbnail: false });
    }
  });

  it("refuses a size that is not a positive integer", () => {
    expect(() => planTiles(0, 10, internvl3)).toThrow();
    expect(() => planTiles(10.5, 10, internvl3)).toThrow();
  });
});

describe("visualTokenCount", () => {
  it("is (tiles + thumbnail) × tokens_per_tile", () => {
    expect(visualTokenCount(512, 512, internvl3)).toBe(256); // 1x1, no thumbnail
    expect(visualTokenCount(640, 427, internvl3)).toBe((6 + 1) * 256); // 3x2 + thumbnail
    expect(visualTokenCount(600, 50, internvl3)).toBe((12 + 1) * 256); // 12x1 + thumbnail
    expect(visualTokenCount(640, 427, oneTile({ ...internvl3, processor: "fixed", tokens_per_tile: 64 }))).toBe(64);
  });
});
