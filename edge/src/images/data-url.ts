import { acceptedMediaType, decodeBase64 } from "../../../shared/image-bytes.js";
import { InvalidRequestError, UnsupportedMediaError } from "../../../shared/index.js";

// The scheme and the media type are case-insensitive (RFC 2397, RFC 2045): `DATA:IMAGE/PNG;BASE64,` is one.
const DATA_URL = /^data:([^,]*?),(.*)$/is;

/** The one test of "is this a data: URL", used to route the image and to decode it, so the two cannot disagree. */
export const isDataUrl = (url: string): boolean => /^data:/i.test(url);

export interface DataUrlImage {
  bytes: Uint8Array;
  /** The base64 text as sent (whitespace removed): forwarded without re-encoding; the functions check it again. */
  base64: string;
}

/** Decodes `data:image/<png|jpeg|webp|gif>;base64,...`, checking the declared type and the size first. */
export function decodeDataUrl(url: string, maxBytes: number, param: string): DataUrlImage {
  const match = DATA_URL.exec(url);
  if (!match) throw new InvalidRequestError("Malformed data: URL", "invalid_image_url", param);
  const [mediaType = "", ...flags] = (match[1] ?? "").split(";");
  if (!flags.map((f) => f.trim().toLowerCase()).includes("base64")) {
    throw new InvalidRequestError("data: image URLs must be base64-encoded", "invalid_image_url", param);
  }
  if (!acceptedMediaType(mediaType)) {
    throw new UnsupportedMediaError(
      `Unsupported image type '${mediaType}': use PNG, JPEG, WebP or GIF`,
      "unsupported_image_type",
      param,
    );
  }
  const base64 = (match[2] ?? "").replace(/\s+/g, "");
  return { bytes: decodeBase64(base64, maxBytes, param), base64 };
}
