/**
 * cutTiles + toPixelValues against transformers' GotOcr2ImageProcessor (slow, PIL; InternVL3-hf settings) on real
 * photographs, recorded by model-export/record_image_processor.py into test/fixtures/photos/reference.json.
 *
 * libvips is not PIL, so the pixels are compared with a tolerance in 8-bit levels over a strided sample (every 9th
 * row and column plus the last) of every tile of every photo. Measured with libvips 8.17.3 (sharp 0.34.5), worst
 * photo: mean 0.133 (astronaut, a pure shrink), p99 1, max 8 (image borders of a 9× enlargement: PIL drops
 * out-of-range taps, we replicate the edge pixel). The bounds sit a little above that, and the last tests show a
 * wrong kernel, sharp's own enlargement and a crop one pixel off all break them.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import { decodePhoto, INTERNVL3_RECIPE } from "../../testing.js";
import { oneTile } from "../fixed/fixed-processor.js";
import { cutTiles, type RgbImage } from "./cut-tiles.js";
import { normaliseTables, toPixelValues } from "./pixel-values.js";

const BOUNDS = { mean: 0.16, p99: 1, max: 10 } as const;
/** Per-tile per-channel mean of pixel_values; one level is 1/255/std ≈ 0.017, measured worst 0.00056 (astronaut). */
const PIXEL_VALUE_MEAN_BOUND = 0.001;

interface PhotoReference {
  file: string;
  width: number;
  height: number;
  decoded_sha256: string;
  cols: number;
  rows: number;
  tiles: number;
  tile_samples: string[];
  pixel_value_means: number[][];
}
const PHOTOS = new URL("../../../../test/fixtures/photos/", import.meta.url);
const reference: {
  tile: number;
  sample_index: number[];
  normalise_table_f32_base64: string[];
  photos: PhotoReference[];
} = JSON.parse(readFileSync(new URL("reference.json", PHOTOS), "utf8"));

const recipe = INTERNVL3_RECIPE;
const T = reference.tile;

const decoded = new Map<string, RgbImage>();
beforeAll(async () => {
  for (const p of reference.photos) decoded.set(p.file, await decodePhoto(p.file));
});
const image = (p: PhotoReference) => decoded.get(p.file) as RgbImage;

interface Stats {
  mean: number;
  p99: number;
  max: number;
}

/** |ours − PIL| in levels over the sampled pixels of all tiles; `shift` reads ours one column to the right. */
function compare(tiles: Uint8Array[], p: PhotoReference, shift = 0): Stats {
  const diffs: number[] = [];
  tiles.forEach((tile, t) => {
    const sample = Buffer.from(p.tile_samples[t] as string, "base64");
    let k = 0;
    for (const y of reference.sample_index) {
      for (const x of reference.sample_index) {
        const xx = Math.min(T - 1, x + shift);
        for (let c = 0; c < 3; c++)
          diffs.push(Math.abs((tile[(y * T + xx) * 3 + c] as number) - (sample[k++] as number)));
      }
    }
  });
  diffs.sort((a, b) => a - b);
  return {
    mean: diffs.reduce((a, b) => a + b, 0) / diffs.length,
    p99: diffs[Math.floor(diffs.length * 0.99)] as number,
    max: diffs[diffs.length - 1] as number,
  };
}
const within = (s: Stats) => s.mean <= BOUNDS.mean && s.p99 <= BOUNDS.p99 && s.max <= BOUNDS.max;

describe("cutTiles on real photographs vs transformers", () => {
  it("has photos of several shapes, including enlargement, shrinking and a 12×1 strip", () => {
    const grids = new Set(reference.photos.map((p) => `${p.cols}x${p.rows}`));
    expect(reference.photos.length).toBeGreaterThanOrEqual(8);
    for (const g of ["1x1", "3x2", "3x1", "1x3", "4x3", "12x1", "2x2"]) expect(grids).toContain(g);
  });

  it.each(reference.photos.map((p) => [p.file, p]))("%s", async (_, p) => {
    // sharp decodes the JPEG to the same bytes as PIL, so every difference below is the resize
    expect(createHash("sha256").update(image(p).rgb).digest("hex")).toBe(p.decoded_sha256);
    const tiles = await cutTiles(image(p), recipe);
    expect(tiles.length).toBe(p.tiles);
    for (const tile of tiles) expect(tile.length).toBe(T * T * 3);

    const stats = compare(tiles, p);
    expect(stats.mean).toBeLessThanOrEqual(BOUNDS.mean);
    expect(stats.p99).toBeLessThanOrEqual(BOUNDS.p99);
    expect(stats.max).toBeLessThanOrEqual(BOUNDS.max);

    const pixelValues = toPixelValues(tiles, recipe);
    expect(pixelValues.length).toBe(p.tiles * 3 * T * T);
    for (let t = 0; t < p.tiles; t++) {
      for (let c = 0; c < 3; c++) {
        const plane = pixelValues.subarray((t * 3 + c) * T * T, (t * 3 + c + 1) * T * T);
        let sum = 0;
        for (const v of plane) sum += v;
        const want = (p.pixel_value_means[t] as number[])[c] as number;
        expect(Math.abs(sum / plane.length - want)).toBeLessThanOrEqual(PIXEL_VALUE_MEAN_BOUND);
      }
    }
  });

  it("the fixed processor is the whole image resized to one tile: transformers' thumbnail", async () => {
    const rocket = reference.photos.find((p) => p.file === "rocket.jpg") as PhotoReference;
    const [tile, ...rest] = await cutTiles(image(rocket), oneTile({ ...recipe, processor: "fixed" }));
    expect(rest).toEqual([]);
    const thumbnailOnly = { ...rocket, tile_samples: rocket.tile_samples.slice(-1) };
    expect(within(compare([tile as Uint8Array], thumbnailOnly))).toBe(true);
  });

  it("an image already tile-sized is passed through untouched", async () => {
    const rgb = new Uint8Array(T * T * 3).map((_, i) => (i * 7) & 255);
    const [tile] = await cutTiles({ width: T, height: T, rgb }, recipe);
    // (Buffer.equals: vitest's deep equality walks 600k elements for seconds)
    expect(Buffer.from(tile as Uint8Array).equals(Buffer.from(rgb))).toBe(true);
  });
});

describe("the bounds can fail", () => {
  it.each(reference.photos.map((p) => [p.file, p]))("%s: a 1-pixel crop shift breaks them", async (_, p) => {
    expect(within(compare(await cutTiles(image(p), recipe), p, 1))).toBe(false);
  });

  it("a wrong kernel (bilinear) breaks them on every photo", async () => {
    for (const p of reference.photos) {
      expect(within(compare(await cutTiles(image(p), { ...recipe, resample: "bilinear" }), p)), p.file).toBe(false);
    }
  });

  it("sharp's own resize (cubic), which enlarges off PIL's sample grid, breaks them on every enlarged photo", async () => {
    for (const p of reference.photos.filter((q) => q.cols * T > q.width || q.rows * T > q.height)) {
      const { width, height, rgb } = image(p);
      const canvas = await sharp(rgb, { raw: { width, height, channels: 3 } })
        .resize(p.cols * T, p.rows * T, { fit: "fill", kernel: "cubic" })
        .raw()
        .toBuffer();
      const tiles = Array.from({ length: p.cols * p.rows }, (_, t) => {
        const out = new Uint8Array(T * T * 3);
        const [col, row] = [t % p.cols, Math.floor(t / p.cols)];
        for (let y = 0; y < T; y++) {
          const start = ((row * T + y) * p.cols * T + col * T) * 3;
          out.set(canvas.subarray(start, start + T * 3), y * T * 3);
        }
        return out;
      });
      expect(within(compare(tiles, { ...p, tile_samples: p.tile_samples.slice(0, tiles.length) })), p.file).toBe(false);
    }
  });
});

describe("toPixelValues", () => {
  it("uses the same float32 table as transformers' rescale + normalize, bit for bit", () => {
    const ours = normaliseTables(recipe);
    reference.normalise_table_f32_base64.forEach((b64, c) => {
      const bytes = Buffer.from(b64, "base64");
      const theirs = new Float32Array(bytes.buffer, bytes.byteOffset, 256);
      expect(new Uint32Array((ours[c] as Float32Array).buffer)).toEqual(new Uint32Array(theirs.slice().buffer));
    });
  });

  it("is planar [tiles, 3, H, W]", () => {
    const small = { ...recipe, tile: { width: 2, height: 1 } };
    const tiles = [new Uint8Array([0, 1, 2, 3, 4, 5]), new Uint8Array([255, 254, 253, 252, 251, 250])];
    const t = normaliseTables(small);
    const at = (c: number, v: number) => (t[c] as Float32Array)[v];
    expect(Array.from(toPixelValues(tiles, small))).toEqual(
      [
        at(0, 0),
        at(0, 3),
        at(1, 1),
        at(1, 4),
        at(2, 2),
        at(2, 5),
        at(0, 255),
        at(0, 252),
        at(1, 254),
        at(1, 251),
      ].concat([at(2, 253), at(2, 250)]),
    );
    expect(() => toPixelValues([new Uint8Array(5)], small)).toThrow();
  });
});
