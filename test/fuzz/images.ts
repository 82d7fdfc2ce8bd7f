/**
 * Image bytes and base64 texts for the fuzzers, good and bad: a valid PNG, the same cut short, a header that
 * claims a decompression bomb, a format's magic bytes over garbage, bytes of no image format, and base64 texts
 * broken in the ways a strict decoder must refuse. Pure fast-check arbitraries over plain bytes (no node:
 * imports): the edge's property tests run them inside workerd, the functions' tests and the fuzz benchmark in
 * Node. Each bad payload names what should refuse it and how (`Refusal`).
 */
import fc from "fast-check";
import { encode } from "fast-png";

/** Where a defect is found: the edge on intake, or only a function decoding the image (the edge forwards it). */
export type Stage = "edge" | "function";

/** What a refusal must look like: one of these statuses, and when known one of these error codes. */
export interface Refusal {
  status: readonly number[];
  code?: readonly string[];
  stage: Stage;
}

export interface Limits {
  /** The edge's MAX_BODY_BYTES (the functions' own body limit follows from the image limit). */
  maxBodyBytes: number;
  /** MAX_IMAGE_BYTES of the edge, STITCH_MAX_IMAGE_BYTES of the functions. */
  maxImageBytes: number;
  /** STITCH_MAX_IMAGE_PIXELS of the functions. */
  maxPixels: number;
}

/** The deployed defaults (wrangler.toml, gpu-worker/config.ts). */
export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 8 * 1024 * 1024,
  maxImageBytes: 4 * 1024 * 1024,
  maxPixels: 4096 ** 2,
};

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const ascii = (text: string) => [...text].map((ch) => ch.charCodeAt(0));
const MAGIC: Record<string, number[]> = {
  png: PNG_SIGNATURE,
  jpeg: [0xff, 0xd8, 0xff],
  gif: ascii("GIF89a"),
  webp: [...ascii("RIFF"), 0x24, 0, 0, 0, ...ascii("WEBP")],
};

/** Whether the bytes start like one of the four accepted formats (what the sniffer in shared/ accepts). */
export function hasImageMagic(bytes: Uint8Array): boolean {
  const starts = (sig: number[], at = 0) => sig.every((b, i) => bytes[at + i] === b);
  return (
    starts(PNG_SIGNATURE) ||
    starts([0xff, 0xd8, 0xff]) ||
    starts(ascii("GIF87a")) ||
    starts(ascii("GIF89a")) ||
    (starts(ascii("RIFF")) && starts(ascii("WEBP"), 8))
  );
}

/** Standard base64 with padding, in workerd and Node alike. */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export const SIDE = 8;

/** A valid 8×8 RGB PNG of these pixels (SIDE² × 3 bytes). */
export const pngOf = (pixels: Uint8Array): Uint8Array =>
  encode({ width: SIDE, height: SIDE, data: pixels, channels: 3, depth: 8 });

/** A valid PNG: random pixels, so that two draws are two images (no answer-cache hit between cases). */
export const validPng = (): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength: SIDE * SIDE * 3, maxLength: SIDE * SIDE * 3 }).map(pngOf);

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const u32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

function chunk(type: string, data: number[]): number[] {
  const typed = new Uint8Array([...ascii(type), ...data]);
  return [...u32(data.length), ...typed, ...u32(crc32(typed))];
}

/**
 * A well-formed PNG whose header claims `width × height` (CRC-correct, so a decoder believes it), with a few
 * bytes of image data: what a decompression bomb looks like before it is inflated.
 */
export function pngClaiming(width: number, height: number): Uint8Array {
  const ihdr = [...u32(width), ...u32(height), 8, 2, 0, 0, 0];
  const idat = [0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01]; // a tiny zlib stream
  return new Uint8Array([...PNG_SIGNATURE, ...chunk("IHDR", ihdr), ...chunk("IDAT", idat), ...chunk("IEND", [])]);
}

export interface BadImage {
  kind: string;
  bytes: Uint8Array;
  refusal: Refusal;
}

const decodeFailed: Refusal = { status: [400], code: ["image_decode_failed"], stage: "function" };
/**
 * A format's magic over garbage: the header reader (shared/image-geometry.ts, at the edge and in the functions) may
 * find no header, or read dimensions out of the garbage and refuse their shape; either way a 400 before decoding.
 */
const garbageRefused: Refusal = {
  status: [400],
  code: ["image_decode_failed", "image_too_many_pixels", "image_aspect_ratio", "image_too_small"],
  stage: "function",
};
const notAnImage: Refusal = { status: [415], code: ["unsupported_image_type"], stage: "edge" };

/** Bad image bytes whose base64 is well formed: refused by the sniffer (edge) or by decoding (function). */
export const badImageBytes = (limits: Limits): fc.Arbitrary<BadImage> =>
  fc.oneof(
    // Cut inside the image data: the last 16 bytes are IDAT's CRC and IEND, without which libpng still decodes.
    fc.tuple(validPng(), fc.double({ min: 0, max: 1, noNaN: true })).map(([png, at]) => ({
      kind: "truncated PNG",
      bytes: png.subarray(0, 8 + Math.floor(at * (png.length - 8 - 17))),
      refusal: decodeFailed,
    })),
    fc
      .tuple(fc.constantFrom(...Object.keys(MAGIC)), fc.uint8Array({ minLength: 0, maxLength: 600 }))
      .map(([format, rest]) => ({
        kind: `${format} magic over garbage`,
        bytes: new Uint8Array([...(MAGIC[format] as number[]), ...rest]),
        refusal: garbageRefused,
      })),
    fc
      .tuple(fc.integer({ min: 1, max: 65_535 }), fc.integer({ min: 1, max: 65_535 }))
      .filter(([w, h]) => w * h > limits.maxPixels)
      .map(([w, h]) => ({
        kind: "bomb-like PNG header",
        bytes: pngClaiming(w, h),
        refusal: { status: [400], code: ["image_too_many_pixels"], stage: "function" as const },
      })),
    fc.constant({ kind: "PNG header of width 0", bytes: pngClaiming(0, 8), refusal: decodeFailed }),
    fc
      .uint8Array({ minLength: 1, maxLength: 600 })
      .filter((b) => !hasImageMagic(b))
      .map((bytes) => ({ kind: "bytes of no image format", bytes, refusal: notAnImage })),
    fc
      .constantFrom("BM", "<svg xmlns='http://www.w3.org/2000/svg'/>", "II*\u0000", "%PDF-1.7", "{}", "GIF8")
      .map((text) => ({ kind: "another format", bytes: new Uint8Array(ascii(text)), refusal: notAnImage })),
  );

export interface BadBase64 {
  kind: string;
  base64: string;
  refusal: Refusal;
}

const invalidBase64: Refusal = { status: [400], code: ["invalid_image_base64"], stage: "edge" };
/**
 * Characters outside both base64 alphabets. Whitespace is not among them (JavaScript's \s, U+2028 and U+00A0
 * included): it is stripped, as MIME line breaks are.
 */
const BAD_CHARS = ["@", "!", "#", "$", "%", "*", "^", "~", "`", "\\", ".", ",", ";", ":", "é", "\u0000", "\u00ff"];

/** Base64 texts no strict decoder accepts, made from a valid image's, plus ones over the size limit. */
export const badBase64 = (limits: Limits): fc.Arbitrary<BadBase64> => {
  const text = validPng().map(toBase64);
  const at = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
  const pos = (s: string, f: number) => Math.floor(f * s.length);
  return fc.oneof(
    fc.tuple(text, at, fc.constantFrom(...BAD_CHARS)).map(([s, f, ch]) => ({
      kind: "base64 with a bad character",
      base64: s.slice(0, pos(s, f)) + ch + s.slice(pos(s, f)),
      refusal: invalidBase64,
    })),
    fc.tuple(text, at).map(([s, f]) => ({
      kind: "base64 padding inside",
      base64: `${s.slice(0, 4 + pos(s.slice(4, -4), f))}=${s.slice(4 + pos(s.slice(4, -4), f))}`,
      refusal: invalidBase64,
    })),
    text.map((s) => ({
      kind: "base64 of impossible length",
      base64: `${s.replace(/=+$/, "")}${"A".repeat((((1 - s.replace(/=+$/, "").length) % 4) + 4) % 4)}`,
      refusal: invalidBase64,
    })),
    fc.constant({ kind: "empty base64", base64: "", refusal: invalidBase64 }),
    fc.integer({ min: 1, max: 4096 }).map((extra) => ({
      kind: "image over the size limit",
      // Refused by its length before decoding: zeros are enough (and cheap to build at 4 MiB).
      base64: "A".repeat(Math.ceil(((limits.maxImageBytes + extra) * 4) / 3 / 4) * 4),
      refusal: { status: [413], code: ["image_too_large"], stage: "edge" as const },
    })),
  );
};

/** Any bad image payload as base64 text: bad bytes encoded well, or a bad encoding. */
export const badImageBase64 = (limits: Limits): fc.Arbitrary<BadBase64> =>
  fc.oneof(
    badImageBytes(limits).map(({ kind, bytes, refusal }) => ({ kind, base64: toBase64(bytes), refusal })),
    badBase64(limits),
  );

/**
 * A valid greyscale PNG of `width × height`, every pixel mid-grey, its rows streamed through zlib
 * (CompressionStream, in workerd and Node alike). 1 × 16,777,216 is about 32 KB: the degenerate image of issue 26,
 * under the pixel limit, that takes libvips seconds to decode and resize.
 */
export async function greyPng(width: number, height: number): Promise<Uint8Array> {
  const rowBytes = 1 + width; // filter byte 0 (none), then one grey byte per pixel
  const rowsPerBlock = Math.max(1, Math.floor((1 << 20) / rowBytes));
  const block = new Uint8Array(rowsPerBlock * rowBytes).fill(128);
  for (let r = 0; r < rowsPerBlock; r++) block[r * rowBytes] = 0;
  const zlib = new CompressionStream("deflate");
  const writing = (async () => {
    const writer = zlib.writable.getWriter();
    for (let done = 0; done < height; done += rowsPerBlock) {
      const rows = Math.min(rowsPerBlock, height - done);
      await writer.write(rows === rowsPerBlock ? block : block.subarray(0, rows * rowBytes));
    }
    await writer.close();
  })();
  const idat = new Uint8Array(await new Response(zlib.readable).arrayBuffer());
  await writing;
  const ihdr = [...u32(width), ...u32(height), 8, 0, 0, 0, 0]; // 8-bit greyscale
  return new Uint8Array([...PNG_SIGNATURE, ...chunk("IHDR", ihdr), ...chunk("IDAT", [...idat]), ...chunk("IEND", [])]);
}
