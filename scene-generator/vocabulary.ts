/**
 * The closed world of the synthetic scenes: what objects can look like and
 * which words describe them. Everything else in the generator (layout,
 * rendering, questions) reads its names from here, so that the training
 * tools and the tokenizer see one vocabulary.
 */

export const COLOURS = ["red", "green", "blue", "yellow", "purple"] as const;
export type Colour = (typeof COLOURS)[number];

export const SHAPES = ["circle", "square", "triangle", "diamond"] as const;
export type Shape = (typeof SHAPES)[number];

export const PLURAL_SHAPES: Record<Shape, string> = {
  circle: "circles",
  square: "squares",
  triangle: "triangles",
  diamond: "diamonds",
};

/** sRGB fill of each colour; far apart so that one patch decides the colour. */
export const RGB: Record<Colour, readonly [number, number, number]> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [230, 200, 30],
  purple: [150, 60, 190],
};

export const DIRECTIONS = ["left", "right", "above", "below"] as const;
export type Direction = (typeof DIRECTIONS)[number];

/** Grid step of each direction as [dRow, dCol]. */
export const STEP: Record<Direction, readonly [number, number]> = {
  left: [0, -1],
  right: [0, 1],
  above: [-1, 0],
  below: [1, 0],
};

/**
 * Question tiers from easy to hard. `exists` and `read` look at one region,
 * `spatial` needs a second look (find an object, then read its neighbour),
 * `count` aggregates over every object of a kind among distractors.
 */
export const TIERS = ["exists", "read", "spatial", "count"] as const;
export type Tier = (typeof TIERS)[number];

export const DIGITS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"] as const;

/** Every word a question or answer can use, in a fixed order (token ids follow it). */
export function sceneWords(): string[] {
  // biome-ignore format: the fixed words read best as two rows; their order sets the token ids
  const words = [
    "what", "colour", "shape", "digit", "is", "the", "on", "of", "how", "many",
    "shapes", "are", "there", "a", "yes", "no", "?",
    ...DIRECTIONS,
    ...COLOURS,
    ...SHAPES,
    ...Object.values(PLURAL_SHAPES),
    ...DIGITS,
  ];
  return [...new Set(words)];
}
