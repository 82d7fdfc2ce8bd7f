/**
 * Image intake: the request's image reference → checked bytes (sniffed as PNG,
 * JPEG, WebP or GIF, with a sensible shape read from the header: the functions'
 * own check, so a degenerate image never reaches one), their base64 for the small
 * function and their SHA-256 for the cache key.
 */

import type { z } from "zod";
import { encodeBase64, type ImageType, requireImageType } from "../../../shared/image-bytes.js";
import { checkImageGeometry, DEFAULT_MAX_IMAGE_PIXELS } from "../../../shared/image-geometry.js";
import { type ImagePayloadSchema, InvalidRequestError } from "../../../shared/index.js";
import { sha256Hex } from "../util/sha256.js";
import { decodeDataUrl, isDataUrl } from "./data-url.js";
import { fetchImage } from "./fetch-image.js";

export interface IntakeOptions {
  maxBytes: number;
  /** The functions' pixel limit (default: theirs, DEFAULT_MAX_IMAGE_PIXELS). */
  maxPixels?: number;
  fetchTimeoutMs: number;
  fetch?: typeof fetch;
}

export interface Image {
  payload: z.infer<typeof ImagePayloadSchema>;
  mediaType: ImageType;
  sha256: string;
  byteLength: number;
}

export async function intakeImage(ref: { url: string; param: string }, options: IntakeOptions): Promise<Image> {
  const { url, param } = ref;
  let bytes: Uint8Array;
  let base64: string | undefined;
  if (isDataUrl(url)) {
    ({ bytes, base64 } = decodeDataUrl(url, options.maxBytes, param));
  } else if (/^https?:/i.test(url)) {
    bytes = await fetchImage(url, {
      maxBytes: options.maxBytes,
      timeoutMs: options.fetchTimeoutMs,
      param,
      fetch: options.fetch,
    });
  } else {
    throw new InvalidRequestError("Image URLs must be https: or data: URLs", "image_url_scheme", param);
  }
  const mediaType = requireImageType(bytes, param);
  checkImageGeometry(bytes, { maxPixels: options.maxPixels ?? DEFAULT_MAX_IMAGE_PIXELS }, param);
  return {
    payload: { base64: base64 ?? encodeBase64(bytes), media_type: mediaType },
    mediaType,
    sha256: await sha256Hex(bytes),
    byteLength: bytes.byteLength,
  };
}
