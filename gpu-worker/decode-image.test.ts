import { createHash } from "node:crypto";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { encodePng, generateItem } from "../scene-generator/index.js";
import { InvalidRequestError, PayloadTooLargeError, UnsupportedMediaError } from "../shared/errors.js";
import { sniffImageType } from "../shared/image-bytes.js";
import { MIN_IMAGE_SIDE } from "../shared/image-geometry.js";
import { greyPng } from "../test/fuzz/images.js";
import { decodeImage } from "./decode-image.js";

const item = generateItem(7, 0);
const SIDE = item.side;
const limits = { resizeTo: { width: SIDE, height: SIDE }, maxBytes: 4 * 1024 * 1024, maxPixels: 4096 * 4096 };
const png = Buffer.from(encodePng(item.rgb, SIDE));
const fromScene = () => sharp(Buffer.from(item.rgb), { raw: { width: SIDE, height: SIDE, channels: 3 } });
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

/** Mean absolute difference per channel value, for lossy formats. */
function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs((a[i] ?? 0) - (b[i] ?? 0));
  return sum / a.length;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail("expected a rejection"),
    (err: unknown) => err,
  );
}

describe("decodeImage: accepted formats", () => {
  it("decodes a scene PNG at the pack size to exactly the rendered pixels", async () => {
    const img = await decodeImage(b64(png), limits);
    expect(img.width).toBe(SIDE);
    expect(img.height).toBe(SIDE);
    expect(img.rgb.length).toBe(SIDE * SIDE * 3);
    expect(Buffer.from(img.rgb).equals(Buffer.from(item.rgb))).toBe(true);
    expect(img.hash).toBe(createHash("sha256").update(png).digest("hex"));
  });

  it.each([
    ["jpeg", () => fromScene().jpeg({ quality: 95 }).toBuffer()],
    ["webp", () => fromScene().webp({ quality: 95 }).toBuffer()],
    ["gif", () => fromScene().gif().toBuffer()],
  ])("decodes %s close to the original pixels", async (format, make) => {
    const bytes = await make();
    expect(sniffImageType(bytes)).toBe(`image/${format}`);
    const img = await decodeImage(b64(bytes), limits);
    expect(img.rgb.length).toBe(SIDE * SIDE * 3);
    expect(meanAbsDiff(img.rgb, item.rgb)).toBeLessThan(format === "gif" ? 12 : 6);
  });

  it("resizes any size to the pack size and flattens transparency onto white", async () => {
    const clear = await sharp({
      create: { width: 300, height: 200, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const img = await decodeImage(b64(clear), limits);
    expect(img.rgb.length).toBe(SIDE * SIDE * 3);
    expect(img.rgb.every((v) => v === 255)).toBe(true);
  });

  it("keeps the image's own size when no resize is asked for (a tiling processor cuts it later)", async () => {
    const wide = await sharp({ create: { width: 300, height: 120, channels: 3, background: "#102030" } })
      .jpeg()
      .toBuffer();
    const img = await decodeImage(b64(wide), { ...limits, resizeTo: undefined });
    expect([img.width, img.height, img.rgb.length]).toEqual([300, 120, 300 * 120 * 3]);
  });

  it("turns greyscale into three equal channels", async () => {
    const grey = await fromScene().greyscale().png().toBuffer();
    const img = await decodeImage(b64(grey), limits);
    expect(img.rgb.length).toBe(SIDE * SIDE * 3);
    expect(img.rgb[0]).toBe(img.rgb[1]);
    expect(img.rgb[1]).toBe(img.rgb[2]);
  });

  it("takes the first frame of an animated GIF", async () => {
    const frames = Buffer.alloc(SIDE * SIDE * 2 * 3);
    for (let i = 0; i < SIDE * SIDE * 3; i += 3) frames[i] = 255; // frame 1 red
    for (let i = SIDE * SIDE * 3; i < frames.length; i += 3) frames[i + 2] = 255; // frame 2 blue
    const gif = await sharp(frames, { raw: { width: SIDE, height: SIDE * 2, channels: 3, pageHeight: SIDE } })
      .gif()
      .toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(2);
    const img = await decodeImage(b64(gif), limits);
    expect([...img.rgb.subarray(0, 3)]).toEqual([255, 0, 0]);
    expect([...img.rgb.subarray(-3)]).toEqual([255, 0, 0]);
  });

  it("accepts URL-safe base64 and line breaks", async () => {
    const wrapped = b64(png).replace(/.{76}/g, "$&\r\n");
    expect((await decodeImage(wrapped, limits)).hash).toBe(createHash("sha256").update(png).digest("hex"));
    const urlSafe = Buffer.from(png).toString("base64url");
    expect((await decodeImage(urlSafe, limits)).rgb).toEqual((await decodeImage(b64(png), limits)).rgb);
  });
});

describe("decodeImage: rejected inputs", () => {
  it.each([["not base64!"], ["@@@@"], ["QUJD="], ["A"], [""]])("invalid base64 %j → 400", async (text) => {
    const err = await rejection(decodeImage(text, limits));
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err).toMatchObject({ status: 400, code: "invalid_image_base64", param: "image.base64" });
  });

  it("too many bytes → 413 before decoding", async () => {
    const err = await rejection(decodeImage(b64(png), { ...limits, maxBytes: png.length - 1 }));
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect(err).toMatchObject({ status: 413, code: "image_too_large" });
    await expect(decodeImage(b64(png), { ...limits, maxBytes: png.length })).resolves.toBeDefined();
  });

  it.each([
    ["garbage", Buffer.from("this is certainly not an image, just some text")],
    ["BMP", Buffer.concat([Buffer.from("BM"), Buffer.alloc(60)])],
    ["TIFF", Buffer.concat([Buffer.from([0x49, 0x49, 0x2a, 0x00]), Buffer.alloc(60)])],
    ["SVG", Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')],
  ])("%s → 415", async (_name, bytes) => {
    const err = await rejection(decodeImage(b64(bytes), limits));
    expect(err).toBeInstanceOf(UnsupportedMediaError);
    expect(err).toMatchObject({ status: 415, code: "unsupported_image_type" });
  });

  it("a real TIFF file is refused even though sharp could read it", async () => {
    const tiff = await fromScene().tiff().toBuffer();
    await expect(decodeImage(b64(tiff), limits)).rejects.toMatchObject({ status: 415 });
  });

  it.each([
    ["PNG", async () => png],
    ["JPEG", () => fromScene().jpeg().toBuffer()],
    ["WebP", () => fromScene().webp().toBuffer()],
    ["GIF", () => fromScene().gif().toBuffer()],
  ])("truncated %s → 400 image_decode_failed", async (_name, make) => {
    const bytes = await make();
    const err = await rejection(decodeImage(b64(bytes.subarray(0, Math.floor(bytes.length / 2))), limits));
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err).toMatchObject({ status: 400, code: "image_decode_failed" });
  });

  it("a valid header followed by garbage → 400 image_decode_failed", async () => {
    const corrupt = Buffer.from(png);
    corrupt.fill(0x5a, 40);
    await expect(decodeImage(b64(corrupt), limits)).rejects.toMatchObject({ status: 400, code: "image_decode_failed" });
  });

  it("too many pixels → 400 image_too_many_pixels, read from the header", async () => {
    await expect(decodeImage(b64(png), { ...limits, maxPixels: SIDE * SIDE - 1 })).rejects.toMatchObject({
      status: 400,
      code: "image_too_many_pixels",
    });
    // A decompression bomb: tiny in bytes, 4100² pixels, over the default 4096² limit.
    const bomb = await sharp({ create: { width: 4100, height: 4100, channels: 3, background: "#ffffff" } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    expect(bomb.length).toBeLessThan(limits.maxBytes);
    await expect(decodeImage(b64(bomb), limits)).rejects.toMatchObject({ status: 400, code: "image_too_many_pixels" });
  });

  it("the 1 × 16,777,216 PNG of issue 26 → 400 image_aspect_ratio from its header (decoding it takes seconds)", async () => {
    const thin = await greyPng(1, 16_777_216);
    expect(thin.length).toBeLessThan(limits.maxBytes);
    await expect(decodeImage(b64(thin), limits)).rejects.toMatchObject({
      status: 400,
      code: "image_aspect_ratio",
      param: "image.base64",
    });
    await expect(decodeImage(b64(await greyPng(MIN_IMAGE_SIDE - 1, 64)), limits)).rejects.toMatchObject({
      code: "image_too_small",
    });
  });

  it("decoding and resizing past the time bound → 400 image_decode_timeout", async () => {
    // 4096² takes libvips some tens of ms on one core: never within 1 ms.
    const large = await sharp({ create: { width: 4096, height: 4096, channels: 3, background: "#808080" } })
      .png()
      .toBuffer();
    await expect(decodeImage(b64(large), { ...limits, timeoutMs: 1 })).rejects.toMatchObject({
      status: 400,
      code: "image_decode_timeout",
      param: "image.base64",
    });
    await expect(decodeImage(b64(large), limits)).resolves.toMatchObject({ width: SIDE, height: SIDE });
  });
});
