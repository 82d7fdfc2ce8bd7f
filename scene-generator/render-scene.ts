import { DIGIT_GLYPHS, GLYPH_HEIGHT, GLYPH_WIDTH } from "./digit-font.js";
import type { Scene, SceneObject } from "./layout-scene.js";
import type { Random } from "./random.js";
import { RGB } from "./vocabulary.js";

export interface RenderOptions {
  cellPx: number;
  /** Amplitude of the uniform background noise, so that the encoder cannot key on exact pixel values. */
  noise: number;
}

const BACKGROUND = 235;
const INK: readonly [number, number, number] = [20, 20, 20];

/** Renders a scene to packed RGB bytes (height × width × 3). */
export function renderScene(scene: Scene, random: Random, options: RenderOptions): Uint8Array {
  const side = scene.grid * options.cellPx;
  const rgb = new Uint8Array(side * side * 3);
  for (let i = 0; i < side * side; i++) {
    const v = BACKGROUND + random.int(-options.noise, options.noise);
    rgb[i * 3] = v;
    rgb[i * 3 + 1] = v;
    rgb[i * 3 + 2] = v;
  }
  for (const object of scene.objects) drawObject(rgb, side, object, options.cellPx);
  return rgb;
}

function drawObject(rgb: Uint8Array, side: number, o: SceneObject, cellPx: number): void {
  const left = o.col * cellPx + o.dx;
  const top = o.row * cellPx + o.dy;
  const fill = RGB[o.colour];
  for (let y = 0; y < o.size; y++) {
    for (let x = 0; x < o.size; x++) {
      if (insideShape(o.shape, (x + 0.5) / o.size, (y + 0.5) / o.size)) {
        setPixel(rgb, side, left + x, top + y, fill);
      }
    }
  }
  // The digit sits low in the object so that it also fits inside a triangle.
  const gx = left + Math.floor((o.size - GLYPH_WIDTH) / 2);
  const gy = top + o.size - GLYPH_HEIGHT - Math.max(1, Math.floor(o.size / 8));
  const glyph = DIGIT_GLYPHS[o.digit] as readonly string[];
  glyph.forEach((line, y) => {
    for (let x = 0; x < GLYPH_WIDTH; x++) if (line[x] === "#") setPixel(rgb, side, gx + x, gy + y, INK);
  });
}

/** Whether the unit-square point (u, v) lies inside the shape. */
function insideShape(shape: SceneObject["shape"], u: number, v: number): boolean {
  switch (shape) {
    case "square":
      return true;
    case "circle":
      return (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25;
    case "triangle":
      return Math.abs(u - 0.5) <= v / 2;
    case "diamond":
      return Math.abs(u - 0.5) + Math.abs(v - 0.5) <= 0.5;
  }
}

function setPixel(rgb: Uint8Array, side: number, x: number, y: number, c: readonly number[]): void {
  const i = (y * side + x) * 3;
  rgb[i] = c[0] as number;
  rgb[i + 1] = c[1] as number;
  rgb[i + 2] = c[2] as number;
}
