/**
 * Image bytes as both sides see them: strict base64 both ways and the format from the magic bytes. The edge
 * checks an image on intake (data: URL or fetched) and the functions check it again before decoding (they are
 * called by the edge, but a function is its own trust boundary); one implementation, so the two cannot disagree on
 * what an image or a base64 text is. Runs in workerd and in Node.
 */
import { InvalidRequestError, PayloadTooLargeError, UnsupportedMediaError } from "./errors.js";

/** The image formats the service accepts, recognised by their magic bytes (never by the declared type). */
export const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"] as const;
export type ImageType = (typeof IMAGE_TYPES)[number];

const startsWith = (bytes: Uint8Array, signature: readonly number[], offset = 0): boolean =>
  bytes.length >= offset + signature.length && signature.every((b, i) => bytes[offset + i] === b);

const ascii = (text: string): number[] => [...text].map((ch) => ch.charCodeAt(0));
const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG = [0xff, 0xd8, 0xff];
const [GIF87, GIF89, RIFF, WEBP] = ["GIF87a", "GIF89a", "RIFF", "WEBP"].map(ascii) as [
  number[],
  number[],
  number[],
  number[],
];

export function sniffImageType(bytes: Uint8Array): ImageType | null {
  if (startsWith(bytes, PNG)) return "image/png";
  if (startsWith(bytes, JPEG)) return "image/jpeg";
  if (startsWith(bytes, GIF87) || startsWith(bytes, GIF89)) return "image/gif";
  if (startsWith(bytes, RIFF) && startsWith(bytes, WEBP, 8)) return "image/webp";
  return null;
}

/** The sniffed type, or a 415 naming the accepted ones. */
export function requireImageType(bytes: Uint8Array, param: string): ImageType {
  const type = sniffImageType(bytes);
  if (type) return type;
  throw new UnsupportedMediaError("The image is not PNG, JPEG, WebP or GIF", "unsupported_image_type", param);
}

/** A declared media type (`image/jpg` is a common alias) → one of ours, or null. */
export function acceptedMediaType(declared: string): ImageType | null {
  const type = declared.split(";")[0]?.trim().toLowerCase() ?? "";
  const normalised = type === "image/jpg" ? "image/jpeg" : type;
  return (IMAGE_TYPES as readonly string[]).includes(normalised) ? (normalised as ImageType) : null;
}

// Standard or URL-safe alphabet, padding only at the end; whitespace (MIME line breaks) is stripped first.
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Node's Buffer decodes base64 about 8× faster than atob; workerd without nodejs_compat has only atob. */
interface NodeBufferLike {
  from(text: string, encoding: "base64"): Uint8Array;
  from(buffer: ArrayBufferLike, byteOffset: number, length: number): { toString(encoding: "base64"): string };
}
const NodeBuffer = (globalThis as { Buffer?: NodeBufferLike }).Buffer;

/**
 * Strict base64 → bytes: refuses any character outside the two alphabets (Node's decoder silently skips them,
 * which would hand the decoder a different file than the one sent), a length no encoding produces, and a text
 * whose decoded size is over `maxBytes`, by its length, before allocating anything.
 */
export function decodeBase64(text: string, maxBytes: number, param: string): Uint8Array {
  const clean = /\s/.test(text) ? text.replace(/\s+/g, "") : text;
  const padding = clean.endsWith("==") ? 2 : clean.endsWith("=") ? 1 : 0;
  if (clean.length === 0 || clean.length % 4 === 1 || (padding > 0 && clean.length % 4 !== 0) || !BASE64.test(clean)) {
    throw new InvalidRequestError("The image's base64 data is not valid base64", "invalid_image_base64", param);
  }
  const decodedLength = Math.floor((clean.length * 3) / 4) - padding;
  if (decodedLength > maxBytes) {
    throw new PayloadTooLargeError(
      `Image is ${decodedLength} bytes; the limit is ${maxBytes}`,
      "image_too_large",
      param,
    );
  }
  if (NodeBuffer) {
    const buffer = NodeBuffer.from(clean, "base64"); // accepts both alphabets
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength); // a plain view, as atob's branch gives
  }
  const binary = atob(clean.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Bytes → standard base64 (what the functions' protocol carries). */
export function encodeBase64(bytes: Uint8Array): string {
  if (NodeBuffer) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  let binary = "";
  const CHUNK = 0x8000; // String.fromCharCode takes its bytes as arguments: bounded
  for (let i = 0; i < bytes.length; i += CHUNK) binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  return btoa(binary);
}
