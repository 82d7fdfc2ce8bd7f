/**
 * visionPositionIds / windowInputs against Qwen2_5_VisionTransformerPretrainedModel.rot_pos_emb's pos_ids and
 * get_window_index (+ unique_consecutive, as forward uses it), recorded by model-export/record_qwen_vl_reference.py
 * into vision-inputs-cases.json for grids divisible and not divisible by the window, a 2-frame grid, and windows of
 * 112 px (Qwen2.5-VL) and 56 px.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { visionInputs, visionPositionIds, windowInputs } from "./vision-inputs.js";

interface Case {
  window_px: number;
  grid_thw: [number, number, number];
  position_ids: number[];
  window_index: number[];
  cu_window_seqlens: number[];
  cu_window_seqlens_unique: number[];
  window_segments: number[];
}
const fixture: { patch_px: number; merge: number; cases: Case[] } = JSON.parse(
  readFileSync(new URL("../vision-inputs-cases.json", import.meta.url), "utf8"),
);
const { patch_px, merge } = fixture;
const name = (c: Case) => `${c.grid_thw.join("x")} patches, window ${c.window_px} px`;

describe("vision inputs vs transformers", () => {
  it("has grids off the window and ones where get_window_index pads a whole empty window", () => {
    const ws = (c: Case) => c.window_px / merge / patch_px;
    const side = (c: Case, i: 1 | 2) => c.grid_thw[i] / merge;
    expect(fixture.cases.some((c) => side(c, 1) % ws(c) !== 0 && side(c, 2) % ws(c) !== 0)).toBe(true);
    // a multiple of the window: transformers pads a full window, so cu_window_seqlens repeats before unique
    expect(fixture.cases.some((c) => c.cu_window_seqlens.length > c.cu_window_seqlens_unique.length)).toBe(true);
    expect(fixture.cases.some((c) => c.grid_thw[0] > 1)).toBe(true);
  });

  it.each(fixture.cases.map((c) => [name(c), c]))("%s", (_, c) => {
    const [t, h, w] = c.grid_thw;
    const grid = { t, h, w };
    expect(Array.from(visionPositionIds(grid, merge))).toEqual(c.position_ids);
    const win = windowInputs(grid, { patch_px, merge, window_px: c.window_px });
    expect(Array.from(win.windowIndex)).toEqual(c.window_index);
    expect(Array.from(win.cuWindowSeqlens)).toEqual(c.cu_window_seqlens_unique);
    expect(Array.from(win.windowSegments)).toEqual(c.window_segments);

    const all = visionInputs(grid, { patch_px, merge, window_px: c.window_px });
    expect(all.vision_position_ids.dims).toEqual([t * h * w, 2]);
    expect(all.window_index.dims).toEqual([(t * h * w) / merge / merge]);
    expect(all.window_segments.dims).toEqual([t * h * w]);
  });

  it("Qwen2-VL (no window): identity order, one segment per frame", () => {
    const win = windowInputs({ t: 2, h: 4, w: 6 }, { patch_px, merge, window_px: null });
    expect(Array.from(win.windowIndex)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(Array.from(win.cuWindowSeqlens)).toEqual([0, 24, 48]);
    expect(Array.from(win.windowSegments)).toEqual([...new Array(24).fill(0), ...new Array(24).fill(1)]);
  });

  it("refuses grids that are not whole merge blocks", () => {
    expect(() => visionPositionIds({ t: 1, h: 3, w: 4 }, merge)).toThrow(RangeError);
    expect(() => windowInputs({ t: 1, h: 4, w: 0 }, { patch_px, merge, window_px: 112 })).toThrow(RangeError);
  });
});
