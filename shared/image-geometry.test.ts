import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { greyPng, pngClaiming } from "../test/fuzz/images.js";
import { InvalidRequestError } from "./errors.js";
import { checkImageGeometry, DEFAULT_MAX_IMAGE_PIXELS, MAX_ASPECT_RATIO, MIN_IMAGE_SIDE } from "./image-geometry.js";

const LIMITS = { maxPixels: DEFAULT_MAX_IMAGE_PIXELS };
const PARAM = "image.base64";

/** The code of the InvalidRequestError `check` throws. */
function refusal(check: () => unknown): string {
  try {
    check();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect((err as InvalidRequestError).param).toBe(PARAM);
    return (err as InvalidRequestError).code;
  }
  return expect.fail("expected a refusal");
}

const solid = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: "#336699" } });

describe("checkImageGeometry", () => {
  it.each([
    ["png", () => solid(300, 120).png().toBuffer()],
    ["jpeg", () => solid(300, 120).jpeg().toBuffer()],
    ["webp", () => solid(300, 120).webp().toBuffer()],
    ["webp lossless", () => solid(300, 120).webp({ lossless: true }).toBuffer()],
    ["gif", () => solid(300, 120).gif().toBuffer()],
  ])("reads the size of a %s from its header", async (_, make) => {
    expect(checkImageGeometry(await make(), LIMITS, PARAM)).toEqual({ width: 300, height: 120 });
  });

  it("refuses the 1 × 16,777,216 PNG of issue 26 by its aspect ratio, though it is under the pixel limit", async () => {
    const png = await greyPng(1, 16_777_216);
    expect(png.length).toBeLessThan(64 * 1024);
    expect(16_777_216).toBeLessThanOrEqual(LIMITS.maxPixels);
    expect(refusal(() => checkImageGeometry(png, LIMITS, PARAM))).toBe("image_aspect_ratio");
  });

  it("accepts an aspect ratio of exactly 200 and refuses one just over, either way round", () => {
    const side = MIN_IMAGE_SIDE;
    expect(checkImageGeometry(pngClaiming(side * MAX_ASPECT_RATIO, side), LIMITS, PARAM)).toEqual({
      width: side * MAX_ASPECT_RATIO,
      height: side,
    });
    expect(refusal(() => checkImageGeometry(pngClaiming(side * MAX_ASPECT_RATIO + 1, side), LIMITS, PARAM))).toBe(
      "image_aspect_ratio",
    );
    expect(refusal(() => checkImageGeometry(pngClaiming(side, side * MAX_ASPECT_RATIO + 1), LIMITS, PARAM))).toBe(
      "image_aspect_ratio",
    );
  });

  it("refuses a side under the minimum", () => {
    expect(checkImageGeometry(pngClaiming(MIN_IMAGE_SIDE, MIN_IMAGE_SIDE), LIMITS, PARAM)).toBeTruthy();
    expect(refusal(() => checkImageGeometry(pngClaiming(MIN_IMAGE_SIDE - 1, 40), LIMITS, PARAM))).toBe(
      "image_too_small",
    );
  });

  it("refuses a declared size over the pixel limit first, whatever its shape", () => {
    expect(refusal(() => checkImageGeometry(pngClaiming(4097, 4096), LIMITS, PARAM))).toBe("image_too_many_pixels");
    expect(refusal(() => checkImageGeometry(pngClaiming(65_535, 300), LIMITS, PARAM))).toBe("image_too_many_pixels");
    expect(refusal(() => checkImageGeometry(pngClaiming(100, 100), { maxPixels: 9999 }, PARAM))).toBe(
      "image_too_many_pixels",
    );
  });

  it("refuses a header it cannot read, or one declaring an empty image, even inside a larger buffer", async () => {
    const png = await solid(20, 20).png().toBuffer();
    expect(refusal(() => checkImageGeometry(png.subarray(0, 20), LIMITS, PARAM))).toBe("image_decode_failed");
    expect(refusal(() => checkImageGeometry(pngClaiming(0, 8), LIMITS, PARAM))).toBe("image_decode_failed");
    const jpeg = await solid(20, 20).jpeg().toBuffer();
    expect(refusal(() => checkImageGeometry(jpeg.subarray(0, 40), LIMITS, PARAM))).toBe("image_decode_failed");
  });
});
