/**
 * mropePositions / the position schemes against transformers' Qwen2_5_VLModel.get_rope_index (equal to
 * Qwen2VLModel's on these), recorded by model-export/record_qwen_vl_reference.py into mrope-cases.json: one image
 * at several offsets and grid shapes (wide, tall, square, 1 merged row), text after it or not, and a text-only prompt.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { mropeDecodePosition, mropePositions, mropeScheme, oneDPositions, positionScheme } from "./mrope.js";

interface Case {
  length: number;
  span: { offset: number; length: number } | null;
  grid_thw: [number, number, number] | null;
  positions: [number[], number[], number[]];
  delta: number;
}
const fixture: { merge: number; cases: Case[] } = JSON.parse(
  readFileSync(new URL("mrope-cases.json", import.meta.url), "utf8"),
);
const merged = (c: Case) =>
  c.grid_thw === null ? null : { t: c.grid_thw[0], h: c.grid_thw[1] / fixture.merge, w: c.grid_thw[2] / fixture.merge };
const name = (c: Case) =>
  c.span ? `${c.length} tokens, image at ${c.span.offset}, grid ${c.grid_thw?.join("x")}` : "text only";

describe("mropePositions vs get_rope_index", () => {
  it.each(fixture.cases.map((c) => [name(c), c]))("%s", (_, c) => {
    const got = mropePositions(c.length, c.span, merged(c));
    expect(got.positions).toEqual(c.positions);
    expect(got.delta).toBe(c.delta);
  });

  it("has cases where the delta is negative and zero (max(h, w) − h · w: zero for one merged row or column)", () => {
    const deltas = new Set(fixture.cases.map((c) => Math.sign(c.delta)));
    expect([...deltas].sort()).toEqual([-1, 0]);
    expect(fixture.cases.some((c) => c.span !== null && c.delta === 0)).toBe(true);
  });
});

describe("position schemes", () => {
  const c = fixture.cases.find(
    (x) => x.span !== null && x.span.offset > 5 && x.grid_thw?.[1] !== x.grid_thw?.[2],
  ) as Case;

  it("mrope: the full prompt is get_rope_index as [3, 1, T]", () => {
    const scheme = mropeScheme(c.length, c.span, merged(c));
    const all = Array.from({ length: c.length }, (_, i) => i);
    expect(scheme.prompt(all)).toEqual({ data: c.positions.flat(), dims: [3, 1, c.length] });
    expect(scheme.delta).toBe(c.delta);
  });

  it("mrope: a pruned prompt keeps each kept token's original position", () => {
    const scheme = mropeScheme(c.length, c.span, merged(c));
    const kept = Array.from({ length: c.length }, (_, i) => i).filter((i) => i % 3 !== 1);
    const { data, dims } = scheme.prompt(kept);
    expect(dims).toEqual([3, 1, kept.length]);
    for (let row = 0; row < 3; row++) {
      expect(data.slice(row * kept.length, (row + 1) * kept.length)).toEqual(kept.map((i) => c.positions[row]?.[i]));
    }
  });

  it("mrope: decode steps are p + delta in all three rows, continuing the prompt's text numbering", () => {
    const scheme = mropeScheme(c.length, c.span, merged(c));
    const last = c.positions[0][c.length - 1] as number;
    // the first generated token (1-D index = prompt length) follows the prompt's last position
    expect(scheme.decode(c.length)).toEqual({ data: [last + 1, last + 1, last + 1], dims: [3, 1, 1] });
    expect(scheme.decode(c.length + 4, 2)).toEqual({
      data: [last + 5, last + 6, last + 5, last + 6, last + 5, last + 6],
      dims: [3, 1, 2],
    });
    expect(mropeDecodePosition(c.length, c.delta)).toEqual([last + 1, last + 1, last + 1]);
  });

  it("1d: the indices themselves, [1, T]", () => {
    expect(oneDPositions.prompt([0, 1, 4, 9])).toEqual({ data: [0, 1, 4, 9], dims: [1, 4] });
    expect(oneDPositions.decode(12)).toEqual({ data: [12], dims: [1, 1] });
    expect(oneDPositions.decode(12, 3)).toEqual({ data: [12, 13, 14], dims: [1, 3] });
    expect(positionScheme("1d", 10, null)).toBe(oneDPositions);
  });

  it("mrope without an image is 1d in three rows", () => {
    const s = positionScheme("mrope", 5, null);
    expect(s.prompt([0, 2, 4])).toEqual({ data: [0, 2, 4, 0, 2, 4, 0, 2, 4], dims: [3, 1, 3] });
    expect(s.decode(5)).toEqual({ data: [5, 5, 5], dims: [3, 1, 1] });
  });

  it("refuses a span that does not match the grid or the prompt", () => {
    expect(() => mropePositions(10, { offset: 2, length: 5 }, { t: 1, h: 2, w: 2 })).toThrow(RangeError);
    expect(() => mropePositions(5, { offset: 2, length: 4 }, { t: 1, h: 2, w: 2 })).toThrow(RangeError);
    expect(() => mropePositions(10, { offset: 2, length: 4 }, null)).toThrow(RangeError);
  });
});
