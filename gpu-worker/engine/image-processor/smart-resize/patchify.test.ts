/**
 * The smart_resize processor (resize, normalise, patchify) against transformers' Qwen2VLImageProcessor (slow, PIL;
 * Qwen2.5-VL settings), recorded by model-export/record_qwen_vl_reference.py into qwen-vl-photos.json.
 *
 * - patchify + normalise are exact: on transformers' own resized image (stored whole for one photo) and on a
 *   synthetic image whose size smart_resize keeps, our pixel_values hash to transformers' bit for bit.
 * - the resize is libvips (sharp), not PIL: compared in 8-bit levels over every 7th row and column (plus the last)
 *   of the resized image of every photo at a small max_pixels (all shrink; the 600x50 strip enlarges vertically)
 *   and, for the small photos, at a large min_pixels (all enlarge). Measured (libvips 8.17.3, sharp 0.34.5): see
 *   BOUNDS; the last tests show that a 1-pixel shift and a wrong kernel break the bounds.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import type { SmartResizeRecipe } from "../../../../shared/index.js";
import { decodePhoto, QWEN25VL_RECIPE } from "../../testing.js";
import type { RgbImage } from "../tiles/cut-tiles.js";
import { normaliseTables } from "../tiles/pixel-values.js";
import { normalisePlanar, patchify, smartResizePixelValues } from "./patchify.js";
import { resizeToSmartSize } from "./smart-resize.js";

/**
 * Measured worst: mean 0.213 (coffee-wide, 600x200 -> 364x112), p99 1, max 5 (rocket, 640x427 -> 252x168); the
 * enlargements are closer (mean <= 0.09, max 3). A shrink by more than 3 per side is looser (libvips' reduce and
 * PIL's antialiased bicubic drift apart as the kernel widens): hubble-deep-field, 1000x872 -> 224x196 (4.5x, a
 * field of point sources), mean 0.583, p99 2, max 7.
 */
const BOUNDS = { mean: 0.25, p99: 1, max: 5 } as const;
const HEAVY_SHRINK_BOUNDS = { mean: 0.65, p99: 2, max: 8 } as const;
const boundsFor = (p: { width: number }, run: { resized: { width: number } }) =>
  p.width / run.resized.width > 3 ? HEAVY_SHRINK_BOUNDS : BOUNDS;

interface Run {
  setting: string;
  min_pixels: number;
  max_pixels: number;
  resized: { height: number; width: number };
  grid_thw: [number, number, number];
  pixel_values_shape: [number, number];
  pixel_values_sha256: string;
  resized_sha256: string;
  rows: number[];
  cols: number[];
  sample_base64: string;
}
interface Photo {
  file: string;
  width: number;
  height: number;
  decoded_sha256: string;
  runs: Run[];
}
const reference: {
  mean: [number, number, number];
  std: [number, number, number];
  normalise_table_f32_base64: string[];
  photos: Photo[];
  whole: Omit<Run, "setting" | "rows" | "cols" | "sample_base64" | "resized_sha256"> & {
    file: string;
    resized_base64: string;
    pixel_values_head: number[];
    pixel_values_patch1_head: number[];
  };
  synthetic: {
    height: number;
    width: number;
    min_pixels: number;
    max_pixels: number;
    grid_thw: number[];
    pixel_values_shape: number[];
    pixel_values_sha256: string;
    pixel_values_head: number[];
  }[];
} = JSON.parse(readFileSync(new URL("../qwen-vl-photos.json", import.meta.url), "utf8"));

// Qwen2.5-VL's recipe with the statistics recorded with the reference.
const recipe: SmartResizeRecipe = { ...QWEN25VL_RECIPE, mean: reference.mean, std: reference.std };
const _PHOTOS = new URL("../../../../test/fixtures/photos/", import.meta.url);
const sha256 = (a: ArrayBufferView) =>
  createHash("sha256")
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest("hex");

const decoded = new Map<string, RgbImage>();
beforeAll(async () => {
  for (const p of reference.photos) decoded.set(p.file, await decodePhoto(p.file));
});

interface Stats {
  mean: number;
  p99: number;
  max: number;
}
/** |ours − PIL| in levels over the recorded sample; `shift` reads ours one column to the right. */
function compare(ours: RgbImage, run: Run, shift = 0): Stats {
  const sample = Buffer.from(run.sample_base64, "base64");
  const diffs: number[] = [];
  let k = 0;
  for (const y of run.rows) {
    for (const x of run.cols) {
      const xx = Math.min(ours.width - 1, x + shift);
      for (let c = 0; c < 3; c++)
        diffs.push(Math.abs((ours.rgb[(y * ours.width + xx) * 3 + c] as number) - (sample[k++] as number)));
    }
  }
  diffs.sort((a, b) => a - b);
  return {
    mean: diffs.reduce((a, b) => a + b, 0) / diffs.length,
    p99: diffs[Math.floor(diffs.length * 0.99)] as number,
    max: diffs[diffs.length - 1] as number,
  };
}
const within = (s: Stats, b: Stats) => s.mean <= b.mean && s.p99 <= b.p99 && s.max <= b.max;
const runs = reference.photos.flatMap((p) => p.runs.map((r) => [`${p.file} (${r.setting})`, p, r] as const));

describe("patchify and normalise: bit-identical to transformers", () => {
  it("uses transformers' float32 normalisation table", () => {
    const ours = normaliseTables(recipe);
    reference.normalise_table_f32_base64.forEach((b64, c) => {
      const bytes = Buffer.from(b64, "base64");
      expect(Buffer.from((ours[c] as Float32Array).buffer).equals(bytes)).toBe(true);
    });
  });

  it(`patchifies transformers' own resized ${reference.whole.file} to its pixel_values`, () => {
    const w = reference.whole;
    const rgb = new Uint8Array(Buffer.from(w.resized_base64, "base64"));
    const image = { width: w.resized.width, height: w.resized.height, rgb };
    const pv = patchify(normalisePlanar(image, recipe), recipe);
    expect(pv.length).toBe(w.pixel_values_shape[0] * w.pixel_values_shape[1]);
    expect(Array.from(pv.subarray(0, 8))).toEqual(w.pixel_values_head);
    const row = w.pixel_values_shape[1];
    expect(Array.from(pv.subarray(row, row + 8))).toEqual(w.pixel_values_patch1_head);
    expect(sha256(pv)).toBe(w.pixel_values_sha256);
  });

  it.each(reference.synthetic.map((s) => [`${s.width}x${s.height}`, s]))(
    "a %s image smart_resize keeps: the whole pipeline is exact",
    async (_, s) => {
      const rgb = new Uint8Array(s.width * s.height * 3);
      for (let y = 0; y < s.height; y++)
        for (let x = 0; x < s.width; x++)
          for (let c = 0; c < 3; c++)
            rgb[(y * s.width + x) * 3 + c] = (7 * x + 13 * y + 101 * c + ((x * y) % 17)) % 256;
      const out = await smartResizePixelValues(
        { width: s.width, height: s.height, rgb },
        { ...recipe, min_pixels: s.min_pixels, max_pixels: s.max_pixels },
      );
      expect([out.grid.t, out.grid.h, out.grid.w]).toEqual(s.grid_thw);
      expect(out.dims).toEqual(s.pixel_values_shape);
      expect(Array.from(out.pixelValues.subarray(0, 8))).toEqual(s.pixel_values_head);
      expect(sha256(out.pixelValues)).toBe(s.pixel_values_sha256);
    },
  );

  it("orders a tiny image as transformers' reshape/transpose does", () => {
    // 4x4 image, patch 1, merge 2, 2 frames: patches go block by block, each block's 2x2 row-major
    const tiny = { patch_px: 1, merge: 2, temporal_patch: 2 };
    const data = Float32Array.from({ length: 3 * 16 }, (_, i) => i);
    const pv = patchify({ width: 4, height: 4, data }, tiny);
    const pixel = (y: number, x: number) => [0, 1, 2].flatMap((c) => [c * 16 + y * 4 + x, c * 16 + y * 4 + x]);
    const order = [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
      [0, 2],
      [0, 3],
      [1, 2],
      [1, 3],
      [2, 0],
      [2, 1],
      [3, 0],
      [3, 1],
    ].concat([
      [2, 2],
      [2, 3],
      [3, 2],
      [3, 3],
    ]);
    expect(Array.from(pv)).toEqual(order.flatMap(([y, x]) => pixel(y as number, x as number)));
    expect(() => patchify({ width: 3, height: 4, data: new Float32Array(36) }, tiny)).toThrow();
  });
});

describe("resize on real photographs vs transformers (PIL bicubic)", () => {
  it("has shrunk and enlarged runs, incl. a strip and a tall photo", () => {
    expect(runs.length).toBeGreaterThanOrEqual(14);
    expect(runs.some(([, p, r]) => r.resized.width > p.width && r.resized.height > p.height)).toBe(true);
    expect(runs.some(([, p, r]) => r.resized.width < p.width && r.resized.height < p.height)).toBe(true);
  });

  it.each(runs)("%s", async (_, p, run) => {
    const image = decoded.get(p.file) as RgbImage;
    expect(sha256(image.rgb)).toBe(p.decoded_sha256); // same decode as PIL: every difference is the resize
    const r = { ...recipe, min_pixels: run.min_pixels, max_pixels: run.max_pixels };
    const out = await smartResizePixelValues(image, r);
    expect(out.resized).toEqual(run.resized);
    expect([out.grid.t, out.grid.h, out.grid.w]).toEqual(run.grid_thw);
    expect(out.dims).toEqual(run.pixel_values_shape);
    const stats = compare(await resizeToSmartSize(image, r), run);
    const bounds = boundsFor(p, run);
    expect(stats.mean).toBeLessThanOrEqual(bounds.mean);
    expect(stats.p99).toBeLessThanOrEqual(bounds.p99);
    expect(stats.max).toBeLessThanOrEqual(bounds.max);
  });
});

describe("the bounds can fail", () => {
  it("a 1-pixel shift breaks them on every run", async () => {
    for (const [name, p, run] of runs) {
      const r = { ...recipe, min_pixels: run.min_pixels, max_pixels: run.max_pixels };
      const ours = await resizeToSmartSize(decoded.get(p.file) as RgbImage, r);
      expect(within(compare(ours, run, 1), boundsFor(p, run)), name).toBe(false);
    }
  });

  it("a wrong kernel (bilinear) breaks them on every run", async () => {
    for (const [name, p, run] of runs) {
      const r = { ...recipe, min_pixels: run.min_pixels, max_pixels: run.max_pixels, resample: "bilinear" as const };
      const ours = await resizeToSmartSize(decoded.get(p.file) as RgbImage, r);
      expect(within(compare(ours, run), boundsFor(p, run)), name).toBe(false);
    }
  });
});
