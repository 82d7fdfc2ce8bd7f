/**
 * Draws an explanation (stitch.explain) over the image: the small model's attention ranking as a heatmap, or the
 * visual tokens the large model kept (the rest veiled). Token i sits in the tile that holds it (tiles row-major,
 * then the thumbnail), at row ⌊j / cols⌋ and column j mod cols of that tile's grid; tiles are fractions of the image.
 */
import type { Explanation } from "../../../shared/schemas/inference.js";

export type OverlayMode = "ranking" | "kept";
/** Which tiles to draw: the detail tiles, or the thumbnail (which covers the whole image). */
export type TileView = "tiles" | "thumbnail";

export interface DrawResult {
  /** Tokens drawn in this view. */
  tokens: number;
  /** Of those, kept by the large model (kept mode), else 0. */
  kept: number;
}

/** The layout's thumbnail: the last tile when there are several and it covers the whole image. */
export function hasThumbnail(layout: Explanation["layout"]): boolean {
  const last = layout.at(-1);
  return layout.length > 1 && !!last && last.x === 0 && last.y === 0 && last.width === 1 && last.height === 1;
}

/** Heat colour for v in [0, 1]: dark blue → red → yellow. */
function heat(v: number): string {
  const stops = [
    [20, 30, 140],
    [200, 40, 60],
    [255, 220, 40],
  ];
  const t = Math.min(1, Math.max(0, v)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t));
  const f = t - i;
  const [a, b] = [stops[i] as number[], stops[i + 1] as number[]];
  const c = a.map((x, k) => Math.round(x + ((b[k] as number) - x) * f));
  return `rgba(${c[0]},${c[1]},${c[2]},${0.25 + 0.45 * v})`;
}

export function drawOverlay(
  canvas: HTMLCanvasElement,
  explanation: Explanation,
  mode: OverlayMode,
  view: TileView,
): DrawResult {
  const ctx = canvas.getContext("2d");
  if (!ctx) return { tokens: 0, kept: 0 };
  const { width: W, height: H } = canvas;
  ctx.clearRect(0, 0, W, H);
  const { layout, ranking } = explanation;
  const kept = new Set(explanation.kept ?? []);
  const thumb = hasThumbnail(layout);
  const drawn: number[] = [];
  let offset = 0;
  const cells: { i: number; x: number; y: number; w: number; h: number }[] = [];
  layout.forEach((tile, t) => {
    const isThumb = thumb && t === layout.length - 1;
    const visible = !thumb || (view === "thumbnail") === isThumb;
    const w = (tile.width / tile.cols) * W;
    const h = (tile.height / tile.rows) * H;
    for (let j = 0; j < tile.rows * tile.cols; j++) {
      const i = offset + j;
      if (!visible) continue;
      const x = tile.x * W + (j % tile.cols) * w;
      const y = tile.y * H + Math.floor(j / tile.cols) * h;
      cells.push({ i, x, y, w, h });
      drawn.push(i);
    }
    offset += tile.rows * tile.cols;
  });
  let keptDrawn = 0;
  if (mode === "ranking" && ranking) {
    const scores = drawn.map((i) => ranking[i] ?? 0);
    const lo = Math.min(...scores);
    const span = Math.max(...scores) - lo || 1;
    for (const c of cells) {
      ctx.fillStyle = heat(((ranking[c.i] ?? 0) - lo) / span);
      ctx.fillRect(c.x, c.y, Math.ceil(c.w), Math.ceil(c.h));
    }
  } else if (mode === "kept") {
    ctx.lineWidth = Math.max(1, W / 400);
    for (const c of cells) {
      if (kept.has(c.i)) {
        keptDrawn++;
        ctx.strokeStyle = "rgba(0,230,255,0.95)";
        ctx.strokeRect(c.x + 0.5, c.y + 0.5, c.w - 1, c.h - 1);
      } else {
        ctx.fillStyle = "rgba(0,0,0,0.62)";
        ctx.fillRect(c.x, c.y, Math.ceil(c.w), Math.ceil(c.h));
      }
    }
  }
  return { tokens: cells.length, kept: keptDrawn };
}
