import type { Scene } from "./layout-scene.js";
import { COLOURS, SHAPES } from "./vocabulary.js";

/**
 * Per-cell content labels (shape, colour, digit; 0 = empty cell, else index + 1),
 * grid² × 3 bytes. They train the vision encoder's dense per-cell loss, the way
 * real VLMs start from an encoder that already knows what each region holds.
 */
export function cellLabels(scene: Scene): Uint8Array {
  const labels = new Uint8Array(scene.grid * scene.grid * 3);
  for (const o of scene.objects) {
    const i = (o.row * scene.grid + o.col) * 3;
    labels[i] = SHAPES.indexOf(o.shape) + 1;
    labels[i + 1] = COLOURS.indexOf(o.colour) + 1;
    labels[i + 2] = o.digit + 1;
  }
  return labels;
}
