/**
 * smartResize against transformers 4.57.1's qwen2_vl smart_resize on ~1,500 (height, width) pairs under four
 * settings (smart-resize-cases.json, recorded by model-export/record_qwen_vl_reference.py): exact halves (Python
 * rounds them to even), sides under the factor, the min/max clamps, and the aspect ratios it refuses.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { InvalidRequestError } from "../../../../shared/index.js";
import {
  MAX_ASPECT_RATIO,
  roundHalfEven,
  type SmartResizeBounds,
  smartResize,
  smartResizeGrid,
} from "./smart-resize.js";

const fixture: { settings: (SmartResizeBounds & { cases: string })[] } = JSON.parse(
  readFileSync(new URL("../smart-resize-cases.json", import.meta.url), "utf8"),
);

interface Case {
  h: number;
  w: number;
  /** null: transformers raises */
  out: { height: number; width: number } | null;
}
const parse = (cases: string): Case[] =>
  cases.split(" ").map((c) => {
    const [h, w, a, b] = c.split(",");
    return { h: Number(h), w: Number(w), out: a === "E" ? null : { height: Number(a), width: Number(b) } };
  });

describe("smartResize vs transformers", () => {
  it.each(fixture.settings.map((s) => [`factor ${s.patch_px * s.merge}, [${s.min_pixels}, ${s.max_pixels}]`, s]))(
    "%s",
    (_, s) => {
      const cases = parse(s.cases);
      expect(cases.length).toBeGreaterThan(1000);
      const wrong: string[] = [];
      for (const { h, w, out } of cases) {
        if (out === null) {
          expect(() => smartResize(h, w, s), `${h}x${w}`).toThrow(InvalidRequestError);
          continue;
        }
        const got = smartResize(h, w, s);
        if (got.height !== out.height || got.width !== out.width) {
          wrong.push(`${h}x${w}: ${got.height}x${got.width}, want ${out.height}x${out.width}`);
        }
      }
      expect(wrong).toEqual([]);
    },
  );

  it("covers the clamps, the refusals and the halves where rounding half up would be wrong", () => {
    for (const s of fixture.settings) {
      const factor = s.patch_px * s.merge;
      const cases = parse(s.cases);
      const done = cases.filter((c) => c.out !== null);
      expect(cases.some((c) => c.out === null)).toBe(true);
      expect(done.some((c) => c.out && c.out.height * c.out.width < c.h * c.w)).toBe(true); // shrunk
      expect(done.some((c) => c.out && c.out.height * c.out.width > c.h * c.w)).toBe(true); // enlarged
      // no max/min clamp, and a side exactly half way between multiples of the factor rounding to even
      const halves = done.filter((c) => {
        const plain = Math.round(c.h / factor) * Math.round(c.w / factor) * factor * factor;
        return (c.h / factor) % 1 === 0.5 && plain <= s.max_pixels && plain >= s.min_pixels;
      });
      expect(halves.some((c) => c.out && c.out.height !== Math.round(c.h / factor) * factor)).toBe(true);
    }
  });

  it("refuses past 200:1 with a 400 the engine can send as is", () => {
    const s = fixture.settings[0] as SmartResizeBounds;
    // exactly 200:1 passes; round(1 / 28) = 0 sends it to the min_pixels branch
    expect(smartResize(1, MAX_ASPECT_RATIO, s)).toEqual({ height: 28, width: 812 });
    let error: unknown;
    try {
      smartResize(10, 2001, s);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error).toMatchObject({ status: 400, code: "image_aspect_ratio", type: "invalid_request_error" });
    expect(() => smartResize(0, 10, s)).toThrow(RangeError);
    expect(() => smartResize(10.5, 10, s)).toThrow(RangeError);
  });

  it("rounds like Python", () => {
    expect([0.5, 1.5, 2.5, 3.5, 2.4999, 2.5001, 7].map(roundHalfEven)).toEqual([0, 2, 2, 4, 2, 3, 7]);
  });
});

describe("smartResizeGrid", () => {
  const recipe = { patch_px: 14, merge: 2, temporal_patch: 2, min_pixels: 3136, max_pixels: 12845056 };
  it("gives transformers' image_grid_thw and the token count", () => {
    // 640x427 (rocket.jpg): round(427 / 28) = 15, round(640 / 28) = 23 -> 420 x 644
    expect(smartResizeGrid(427, 640, recipe)).toEqual({
      resized: { height: 420, width: 644 },
      grid: { t: 1, h: 30, w: 46 },
      merged: { t: 1, h: 15, w: 23 },
      patches: 1380,
      tokens: 345,
    });
  });
  it("follows a lower max_pixels (image detail)", () => {
    const low = smartResizeGrid(427, 640, { ...recipe, max_pixels: 28 * 28 * 64 });
    expect(low.tokens).toBeLessThanOrEqual(64);
    expect(low.patches).toBe(low.tokens * 4);
  });
});
