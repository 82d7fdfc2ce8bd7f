import { describe, expect, it } from "vitest";
import type { ModelPackManifest } from "../../shared/index.js";
import { preprocessImage } from "./preprocess-image.js";

// 16 × 16 pixels, so the three channels together take every byte value exactly three times.
const SIDE = 16;
const mean = [0.485, 0.456, 0.406];
const std = [0.229, 0.224, 0.225];
const manifest = { image: { width: SIDE, height: SIDE, mean, std } } as unknown as ModelPackManifest;

describe("preprocessImage", () => {
  it("gives every byte value exactly the float32 of (v/255 − mean)/std, in planar CHW order", () => {
    const rgb = Uint8Array.from({ length: SIDE * SIDE * 3 }, (_, i) => (i * 7 + 3) % 256);
    const out = preprocessImage({ hash: "t", width: SIDE, height: SIDE, rgb }, manifest);
    const plane = SIDE * SIDE;
    const expected = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) {
        expected[c * plane + i] = ((rgb[i * 3 + c] as number) / 255 - (mean[c] as number)) / (std[c] as number);
      }
    }
    expect(Buffer.from(out.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
  });

  it("refuses an image that was not resized to the pack's input size", () => {
    const rgb = new Uint8Array((SIDE - 1) * SIDE * 3);
    expect(() => preprocessImage({ hash: "t", width: SIDE - 1, height: SIDE, rgb }, manifest)).toThrow(/16x16/);
  });
});
