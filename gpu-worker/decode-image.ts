/**
 * Stage 1 of the worker: base64 image payload → DecodedImage (packed RGB, at the
 * image's own size, or straight at the tile size for a pack whose processor stretches
 * every image to one tile). Every way an image can be bad ends here as a typed 4xx,
 * before any model runs: a degenerate shape from its header, before decoding (the
 * check the edge makes too, shared/image-geometry.ts), and a decode that runs past
 * its time bound.
 */
import { createHash } from "node:crypto";
import sharp from "sharp";
import { InvalidRequestError } from "../shared/errors.js";
import { decodeBase64, requireImageType } from "../shared/image-bytes.js";
import { checkImageGeometry } from "../shared/image-geometry.js";
import type { DecodedImage } from "./engine/types.js";

// libvips' operation cache keeps recent inputs in memory; every request brings a new image, so it only costs RAM.
sharp.cache(false);

export interface DecodeLimits {
  /** Resize while decoding (stretching, as the embedded pair was trained on squares); absent: keep the size. */
  resizeTo?: { width: number; height: number };
  maxBytes: number;
  maxPixels: number;
  /** Decoding and resizing together must end within this (default DECODE_TIMEOUT_MS), or the image is refused. */
  timeoutMs?: number;
}

/** Far above a legitimate decode (a 4096 × 4096 photo takes well under 0.5 s on one core), far below a deadline. */
export const DECODE_TIMEOUT_MS = 2000;

const PARAM = "image.base64";

export async function decodeImage(base64: string, limits: DecodeLimits): Promise<DecodedImage> {
  // The edge checked both already; a function is its own trust boundary, and these are the same checks (shared/).
  const bytes = decodeBase64(base64, limits.maxBytes, PARAM);
  requireImageType(bytes, PARAM);
  checkImageGeometry(bytes, limits, PARAM);
  // libvips decodes on a worker thread: hash meanwhile instead of after.
  const rgb = toRgb(bytes, limits);
  const hash = createHash("sha256").update(bytes).digest("hex");
  return { hash, ...(await rgb) };
}

/**
 * libvips checks `timeout` only as it writes output rows, so a small output (a 64 × 64 tile) may see it late: the
 * timer answers at the bound whatever libvips is doing, and libvips' own timeout stops the work behind it.
 */
async function toRgb(bytes: Uint8Array, limits: DecodeLimits): Promise<Omit<DecodedImage, "hash">> {
  const timeoutMs = limits.timeoutMs ?? DECODE_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(decodeTimeout(timeoutMs)), timeoutMs);
  });
  const decoding = decodeWithSharp(bytes, limits, Math.max(1, Math.ceil(timeoutMs / 1000)));
  decoding.catch(() => {}); // abandoned at the bound: its late failure is nobody's
  try {
    return await Promise.race([decoding, expired]);
  } finally {
    clearTimeout(timer);
  }
}

async function decodeWithSharp(
  bytes: Uint8Array,
  limits: DecodeLimits,
  timeoutSeconds: number,
): Promise<Omit<DecodedImage, "hash">> {
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
    const { data, info } = await sized
      .toColourspace("srgb")
      .removeAlpha()
      .raw()
      .timeout({ seconds: timeoutSeconds })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
      throw new Error(`unexpected decoder output: ${info.width}x${info.height}x${info.channels}`);
    }
    return { width: info.width, height: info.height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (err) {
    const message = err instanceof Error ? err.message : "";
    if (/pixel limit/i.test(message)) throw tooManyPixels(limits, err);
    if (/^timeout/i.test(message)) throw decodeTimeout(timeoutSeconds * 1000, err);
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

function decodeTimeout(ms: number, cause?: unknown) {
  return new InvalidRequestError(
    `The image took longer than ${ms} ms to decode and resize`,
    "image_decode_timeout",
    PARAM,
    { cause },
  );
}
