import type { Random } from "./random.js";
import { COLOURS, type Colour, SHAPES, type Shape } from "./vocabulary.js";

export interface SceneObject {
  row: number;
  col: number;
  colour: Colour;
  shape: Shape;
  /** The digit printed on the object, 0-9. */
  digit: number;
  /** Pixel size and offset jitter inside the cell (rendering detail, not content). */
  size: number;
  dx: number;
  dy: number;
}

export interface Scene {
  grid: number;
  objects: SceneObject[];
}

export interface LayoutOptions {
  grid: number;
  cellPx: number;
  minObjects: number;
  maxObjects: number;
  /** Share of objects placed next to an earlier one, so that spatial questions always have a neighbour to ask about. */
  clusterShare: number;
}

/**
 * Lays out one scene: every object has a distinct (colour, shape) pair, so that
 * "the red circle" always names exactly one object, and sits alone in its cell,
 * so that visual token i holds exactly the object in cell i.
 */
export function layoutScene(random: Random, options: LayoutOptions): Scene {
  const count = random.int(options.minObjects, options.maxObjects);
  const kinds = random.shuffle(COLOURS.flatMap((colour) => SHAPES.map((shape) => ({ colour, shape }))));
  const taken = new Set<number>();
  const cells: number[] = [];
  const g = options.grid;
  for (let i = 0; i < count; i++) {
    const nearPrevious = i > 0 && random.next() < options.clusterShare;
    const cell = nearPrevious ? freeNeighbour(random, cells, taken, g) : undefined;
    const chosen = cell ?? freeCell(random, taken, g);
    taken.add(chosen);
    cells.push(chosen);
  }
  const minSize = options.cellPx - 3;
  const objects = cells.map((cell, i) => {
    const kind = kinds[i] as { colour: Colour; shape: Shape };
    const size = random.int(minSize, options.cellPx - 2);
    const slack = options.cellPx - size;
    return {
      row: Math.floor(cell / g),
      col: cell % g,
      colour: kind.colour,
      shape: kind.shape,
      digit: random.int(0, 9),
      size,
      dx: random.int(0, slack),
      dy: random.int(0, slack),
    };
  });
  return { grid: g, objects };
}

function freeCell(random: Random, taken: Set<number>, g: number): number {
  const free = [...Array(g * g).keys()].filter((c) => !taken.has(c));
  return random.pick(free);
}

function freeNeighbour(random: Random, cells: number[], taken: Set<number>, g: number): number | undefined {
  const anchor = random.pick(cells);
  const r = Math.floor(anchor / g);
  const c = anchor % g;
  const options = [
    [r, c - 1],
    [r, c + 1],
    [r - 1, c],
    [r + 1, c],
  ]
    .filter(([rr, cc]) => (rr as number) >= 0 && (rr as number) < g && (cc as number) >= 0 && (cc as number) < g)
    .map(([rr, cc]) => (rr as number) * g + (cc as number))
    .filter((cell) => !taken.has(cell));
  return options.length > 0 ? random.pick(options) : undefined;
}
