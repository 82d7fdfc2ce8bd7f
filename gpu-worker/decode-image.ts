/**
 * Stage 1 of the worker: base64 image payload → DecodedImage (packed RGB, at the
 * image's own size, or straight at the tile size for a pack whose processor stretches
 * every image to one tile). Every way an image can be bad ends here as a typed 4xx,
 * before any model runs.
 */
import { createHash } from "node:crypto";
import sharp from "sharp";
import { InvalidRequestError, PayloadTooLargeError, UnsupportedMediaError } from "../shared/errors.js";
import type { DecodedImage } from "./engine/types.js";

// libvips' operation cache keeps recent inputs in memory; every request brings a new image, so it only costs RAM.
sharp.cache(false);

export interface DecodeLimits {
  /** Resize while decoding (stretching, as the embedded pair was trained on squares); absent: keep the size. */
  resizeTo?: { width: number; height: number };
  maxBytes: number;
  maxPixels: number;
}

export type ImageFormat = "png" | "jpeg" | "webp" | "gif";

const PARAM = "image.base64";
// Standard or URL-safe alphabet, optional padding; whitespace is stripped first (MIME line breaks).
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export async function decodeImage(base64: string, limits: DecodeLimits): Promise<DecodedImage> {
  const bytes = decodeBase64(base64, limits.maxBytes);
  sniffFormat(bytes);
  // libvips decodes on a worker thread: hash meanwhile instead of after.
  const rgb = toRgb(bytes, limits);
  const hash = createHash("sha256").update(bytes).digest("hex");
  return { hash, ...(await rgb) };
}

/** Strict base64: Buffer.from silently skips bad characters, which would hand sharp a silently different file. */
export function decodeBase64(text: string, maxBytes: number): Uint8Array {
  const clean = /\s/.test(text) ? text.replace(/\s+/g, "") : text;
  if (clean.length === 0 || clean.length % 4 === 1 || !BASE64.test(clean)) {
    throw new InvalidRequestError("image.base64 is not valid base64", "invalid_image_base64", PARAM);
  }
  // Refuse by the encoded length, before allocating the decoded buffer.
  const padding = clean.endsWith("==") ? 2 : clean.endsWith("=") ? 1 : 0;
  const decodedLength = Math.floor((clean.length * 3) / 4) - padding;
  if (decodedLength > maxBytes) {
    throw new PayloadTooLargeError(
      `Image is ${decodedLength} bytes; the limit is ${maxBytes}`,
      "image_too_large",
      PARAM,
    );
  }
  // Node's base64 decoder accepts both alphabets.
  return Buffer.from(clean, "base64");
}

/** The format from the magic bytes: the declared media type is a hint, the bytes are the truth. */
export function sniffFormat(bytes: Uint8Array): ImageFormat {
  const ascii = (from: number, to: number) => Buffer.from(bytes.subarray(from, to)).toString("latin1");
  if (bytes.length >= 8 && ascii(0, 8) === "\x89PNG\r\n\x1a\n") return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  if (bytes.length >= 12 && ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "webp";
  if (bytes.length >= 6 && (ascii(0, 6) === "GIF87a" || ascii(0, 6) === "GIF89a")) return "gif";
  throw new UnsupportedMediaError(
    "Unsupported image format; send PNG, JPEG, WebP or GIF",
    "unsupported_image_format",
    PARAM,
  );
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
