/**
 * The image's tiles, as transformers' GotOcr2ImageProcessor cuts them: one resize of the whole image to the tile
 * canvas (cols × tile.width by rows × tile.height), the canvas cut row-major, then (when the plan says so) a
 * tile-sized resize of the *original* image as the thumbnail. Resizing is libvips (sharp), chosen per axis to land
 * on PIL's sample positions; see `resizeRgb`.
 */
import sharp from "sharp";
import type { TiledImageRecipe } from "../../../../shared/index.js";
import { planTiles } from "./plan-tiles.js";

export interface RgbImage {
  width: number;
  height: number;
  /** Packed RGB, width × height × 3. */
  rgb: Uint8Array;
}

type TileRecipe = Pick<TiledImageRecipe, "tile" | "min_tiles" | "max_tiles" | "thumbnail" | "resample">;

/** Tiles in transformers' order (row-major over the canvas, then the thumbnail), each tile.width × tile.height × 3. */
export async function cutTiles(image: RgbImage, recipe: TileRecipe): Promise<Uint8Array[]> {
  const { width, height, rgb } = image;
  if (rgb.length !== width * height * 3) {
    throw new Error(`rgb must be ${width}x${height}x3 bytes (got ${rgb.length})`);
  }
  const plan = planTiles(width, height, recipe);
  const tw = recipe.tile.width;
  const th = recipe.tile.height;
  // Both resizes read the original (transformers resizes the thumbnail from the original image, not from the
  // canvas), so they are independent libvips pipelines and can run at the same time.
  const [canvas, thumbnail] = await Promise.all([
    resizeRgb(image, plan.cols * tw, plan.rows * th, recipe.resample),
    plan.thumbnail ? resizeRgb(image, tw, th, recipe.resample) : null,
  ]);
  const tiles: Uint8Array[] = [];
  for (let row = 0; row < plan.rows; row++) {
    for (let col = 0; col < plan.cols; col++) tiles.push(copyRect(canvas, col * tw, row * th, tw, th));
  }
  if (thumbnail) tiles.push(copyRect(thumbnail, 0, 0, tw, th));
  return tiles;
}

/** A resized image whose wanted pixels are the top-left width × height of a buffer `stride` pixels wide. */
export interface Resized {
  data: Uint8Array;
  stride: number;
}

/**
 * Pad of edge-replicated pixels added on an enlarged axis before the affine upscale. libvips' affine fills samples
 * outside the image with black (sharp gives no way to ask for "copy"), which darkens the first and last output rows
 * and columns; PIL instead drops the out-of-range taps. Replicated pixels are far closer to PIL than black. The
 * bicubic interpolator reads 2 pixels either side; 3 leaves a margin.
 */
const PAD = 3;

/**
 * Resize to width × height landing on PIL's sample grid: PIL (and so transformers) maps output pixel X to input
 * x = (X + 0.5) · in/out − 0.5 on both axes, with the filter widened by the scale when it shrinks (antialias).
 * - Shrinking axis: libvips' reduce (`sharp.resize`) with the matching kernel uses that same centre convention and
 *   widened support; measured against PIL it is within a level or two (`cubic` = Catmull-Rom = PIL's bicubic,
 *   Keys a = −0.5).
 * - Enlarging axis: `sharp.resize` does *not* (it samples about 0.5·in/out input pixels left of PIL: 3–6 levels
 *   mean error on textured photos), so that axis goes through `affine` with idx = 0.5 − PAD and odx = −0.5, which
 *   is exactly PIL's mapping, over an input padded by PAD replicated pixels.
 * Both happen in one libvips pipeline (sharp runs resize before affine), so one pass either way.
 */
export async function resizeRgb(image: RgbImage, width: number, height: number, resample: TileRecipe["resample"]) {
  const { width: w, height: h } = image;
  if (w === width && h === height) return { data: image.rgb, stride: w } satisfies Resized; // PIL: a plain copy
  const upX = width > w;
  const upY = height > h;
  const src = upX || upY ? padEdges(image, upX ? PAD : 0, upY ? PAD : 0) : image;
  let pipeline = sharp(src.rgb, { raw: { width: src.width, height: src.height, channels: 3 } });
  if (!(upX && upY)) {
    // the shrinking (or unchanged) axes; an enlarged axis keeps its padded size here and is scaled by the affine
    pipeline = pipeline.resize(upX ? src.width : width, upY ? src.height : height, {
      fit: "fill",
      kernel: REDUCE_KERNEL[resample],
    });
  }
  if (upX || upY) {
    pipeline = pipeline.affine(
      [
        [upX ? width / w : 1, 0],
        [0, upY ? height / h : 1],
      ],
      {
        interpolator: UPSCALE_INTERPOLATOR[resample],
        // output X = scale · (x_padded + idx) + odx, and x_padded = x + PAD: X = scale · (x + 0.5) − 0.5 as in PIL
        idx: upX ? 0.5 - PAD : 0,
        odx: upX ? -0.5 : 0,
        idy: upY ? 0.5 - PAD : 0,
        ody: upY ? -0.5 : 0,
      },
    );
  }
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  // libvips starts the affine's output at X = 0 and runs it past `width` (the padding, scaled): keep the top-left.
  if (info.channels !== 3 || info.width < width || info.height < height) {
    throw new Error(`resize to ${width}x${height} gave ${info.width}x${info.height}x${info.channels}`);
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), stride: info.width } satisfies Resized;
}

/** libvips reduce kernels for PIL's filters (measured for bicubic; see cut-tiles.test.ts). */
const REDUCE_KERNEL = { bicubic: "cubic", bilinear: "linear", lanczos: "lanczos3" } as const;
/** libvips interpolators for enlarging; it has no Lanczos interpolator, so lanczos enlarges with Catmull-Rom. */
const UPSCALE_INTERPOLATOR = { bicubic: "bicubic", bilinear: "bilinear", lanczos: "bicubic" } as const;

function padEdges(image: RgbImage, px: number, py: number): RgbImage {
  const { width: w, height: h, rgb } = image;
  const pw = w + 2 * px;
  const ph = h + 2 * py;
  const out = new Uint8Array(pw * ph * 3);
  for (let y = 0; y < ph; y++) {
    const sy = Math.min(h - 1, Math.max(0, y - py));
    const srcRow = sy * w * 3;
    const dstRow = y * pw * 3;
    out.set(rgb.subarray(srcRow, srcRow + w * 3), dstRow + px * 3);
    for (let x = 0; x < px; x++) {
      out.copyWithin(dstRow + x * 3, dstRow + px * 3, dstRow + px * 3 + 3);
      out.copyWithin(dstRow + (px + w + x) * 3, dstRow + (px + w - 1) * 3, dstRow + (px + w) * 3);
    }
  }
  return { width: pw, height: ph, rgb: out };
}

function copyRect(src: Resized, left: number, top: number, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const start = ((top + y) * src.stride + left) * 3;
    out.set(src.data.subarray(start, start + width * 3), y * width * 3);
  }
  return out;
}
