/**
 * Stage 1 of the worker: base64 image payload → DecodedImage (packed RGB, at the
 * image's own size, or straight at the tile size for a pack whose processor stretches
 * every image to one tile). Every way an image can be bad ends here as a typed 4xx,
 * before any model runs.
 */
import { createHash } from "node:crypto";
import sharp from "sharp";
import { InvalidRequestError } from "../shared/errors.js";
import { decodeBase64, requireImageType } from "../shared/image-bytes.js";
import type { DecodedImage } from "./engine/types.js";

// libvips' operation cache keeps recent inputs in memory; every request brings a new image, so it only costs RAM.
sharp.cache(false);

export interface DecodeLimits {
  /** Resize while decoding (stretching, as the embedded pair was trained on squares); absent: keep the size. */
  resizeTo?: { width: number; height: number };
  maxBytes: number;
  maxPixels: number;
}

const PARAM = "image.base64";

export async function decodeImage(base64: string, limits: DecodeLimits): Promise<DecodedImage> {
  // The edge checked both already; a function is its own trust boundary, and these are the same checks (shared/).
  const bytes = decodeBase64(base64, limits.maxBytes, PARAM);
  requireImageType(bytes, PARAM);
  // libvips decodes on a worker thread: hash meanwhile instead of after.
  const rgb = toRgb(bytes, limits);
  const hash = createHash("sha256").update(bytes).digest("hex");
  return { hash, ...(await rgb) };
}

async function toRgb(bytes: Uint8Array, limits: DecodeLimits): Promise<Omit<DecodedImage, "hash">> {
  try {
    // pages: 1 = the first frame of an animated GIF/WebP; failOn "warning" turns a truncated file into an error
    // instead of an image padded with grey. limitInputPixels refuses a decompression bomb from the header, before
    // a pixel is decoded (sharp checks width × height > limit when it opens the input), so no separate
    // metadata() pass is needed: that pass cost a second trip through libvips on every request.
    const decoded = sharp(bytes, { pages: 1, failOn: "warning", limitInputPixels: limits.maxPixels })
      .autoOrient()
      .flatten({ background: "#ffffff" });
    const sized = limits.resizeTo
      ? decoded.resize(limits.resizeTo.width, limits.resizeTo.height, { fit: "fill" })
      : decoded;
    const { data, info } = await sized.toColourspace("srgb").removeAlpha().raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
      throw new Error(`unexpected decoder output: ${info.width}x${info.height}x${info.channels}`);
    }
    return { width: info.width, height: info.height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (err) {
    const message = err instanceof Error ? err.message : "";
    if (/pixel limit/i.test(message)) throw tooManyPixels(limits, err);
    const cause = { cause: err };
    throw new InvalidRequestError(
      "The image could not be decoded (corrupt or truncated)",
      "image_decode_failed",
      PARAM,
      cause,
    );
  }
}

function tooManyPixels(limits: DecodeLimits, cause: unknown) {
  return new InvalidRequestError(`Image exceeds ${limits.maxPixels} pixels`, "image_too_many_pixels", PARAM, {
    cause,
  });
}
