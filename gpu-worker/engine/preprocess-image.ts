/** Pixels to the vision graph's input: planar CHW float32, normalised per the pack's manifest. */
import type { ModelPackManifest } from "../../shared/index.js";
import type { DecodedImage } from "./types.js";

export function preprocessImage(image: DecodedImage, manifest: ModelPackManifest): Float32Array {
  const { width, height, mean, std } = manifest.image;
  if (image.width !== width || image.height !== height || image.rgb.length !== width * height * 3) {
    throw new Error(`image must be ${width}x${height} RGB before preprocessing (got ${image.width}x${image.height})`);
  }
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      out[c * plane + i] = ((image.rgb[i * 3 + c] as number) / 255 - (mean[c] as number)) / (std[c] as number);
    }
  }
  return out;
}
