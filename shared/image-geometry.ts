/**
 * The shape of an image, read from its header before anything decodes it, and the shapes refused: what one
 * decode would cost is bounded by the pixel count only for sensible shapes. A 1 × 16,777,216 PNG is under the
 * pixel limit, 32 KB on the wire, and takes libvips about 2 s to decode and resize (one row per pixel), so extreme
 * aspect ratios are refused too, as transformers' image processors refuse them, and so are images too small to
 * hold a patch. One check for the edge's intake (workerd: refused before any function is called) and the
 * functions' decoder (Node: a function is its own trust boundary). The header is read by `image-size` (no Node
 * APIs on a Uint8Array), after the sniffer in image-bytes.ts has accepted the format.
 */
import { imageSize } from "image-size";
import { InvalidRequestError } from "./errors.js";

/** max(width, height) / min(width, height) above this is refused (Qwen2-VL's `smart_resize` refuses over 200). */
export const MAX_ASPECT_RATIO = 200;
/**
 * Narrower or shorter than this is refused: the patch of the embedded pair is 8 px (InternVL's and Qwen's 14), so a
 * thinner image has no row or column of patches of its own; transformers' Qwen2-VL once refused sides under 28.
 */
export const MIN_IMAGE_SIDE = 8;
/** The functions' default STITCH_MAX_IMAGE_PIXELS, and the edge's bound (it cannot know a function's setting). */
export const DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096;

export interface ImageGeometry {
  width: number;
  height: number;
}

/**
 * Width and height from the header, or a 400 when the header is unreadable, declares more than `maxPixels`, an
 * aspect ratio over MAX_ASPECT_RATIO or a side under MIN_IMAGE_SIDE (checked in that order). Reads a few header
 * bytes (a JPEG: up to its frame header); decodes nothing.
 */
export function checkImageGeometry(bytes: Uint8Array, limits: { maxPixels: number }, param: string): ImageGeometry {
  const { width, height } = readHeader(bytes, param);
  const pixels = width * height;
  if (pixels > limits.maxPixels) {
    throw new InvalidRequestError(
      `Image is ${width} × ${height} = ${pixels} pixels; the limit is ${limits.maxPixels}`,
      "image_too_many_pixels",
      param,
    );
  }
  if (Math.max(width, height) / Math.min(width, height) > MAX_ASPECT_RATIO) {
    throw new InvalidRequestError(
      `Image is ${width} × ${height}: its aspect ratio exceeds ${MAX_ASPECT_RATIO}:1`,
      "image_aspect_ratio",
      param,
    );
  }
  if (Math.min(width, height) < MIN_IMAGE_SIDE) {
    throw new InvalidRequestError(
      `Image is ${width} × ${height}: each side must be at least ${MIN_IMAGE_SIDE} pixels`,
      "image_too_small",
      param,
    );
  }
  return { width, height };
}

function readHeader(bytes: Uint8Array, param: string): ImageGeometry {
  const unreadable = (cause?: unknown) =>
    new InvalidRequestError(
      "The image's header could not be read (corrupt or truncated)",
      "image_decode_failed",
      param,
      {
        cause,
      },
    );
  // image-size reads through DataViews of the whole underlying buffer: a view into a larger one (Node's pooled
  // Buffers) would let a truncated header be read on into bytes that are not the image's. Give it its own (a copy:
  // a Buffer's slice() would be another view).
  const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
  let size: { width?: number; height?: number };
  try {
    size = imageSize(own);
  } catch (err) {
    throw unreadable(err);
  }
  const { width = 0, height = 0 } = size;
  // A side of 0 (or garbage that is not a count) is a header no decoder can honour.
  if (!(Number.isSafeInteger(width) && Number.isSafeInteger(height) && width > 0 && height > 0)) throw unreadable();
  return { width, height };
}
