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
  for (let c = 0; c < 3; c++) {
    const table = normalisedBytes(mean[c] as number, std[c] as number);
    const channel = out.subarray(c * plane, (c + 1) * plane);
    for (let i = 0; i < plane; i++) channel[i] = table[image.rgb[i * 3 + c] as number] as number;
  }
  return out;
}

/**
 * The normalised value of each of the 256 byte values: a byte has only 256 values, so a table of the same
 * formula (same operations, same float32 rounding) gives bit-identical input for a fraction of the divisions.
 */
function normalisedBytes(mean: number, std: number): Float32Array {
  const table = new Float32Array(256);
  for (let v = 0; v < 256; v++) table[v] = (v / 255 - mean) / std;
  return table;
}
