/**
 * A small line/scatter chart as standalone SVG: linear axes with round ticks,
 * one polyline with markers per series, lone points, dashed reference lines and
 * a legend. Enough for the benchmark figures without a plotting dependency.
 */
export interface Series {
  name: string;
  points: { x: number; y: number; label?: string }[];
  /** Draw markers only (a method measured at one setting). */
  pointsOnly?: boolean;
  dashed?: boolean;
}

export interface Plot {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Horizontal reference lines (e.g. small-only accuracy). */
  hlines?: { y: number; name: string }[];
  xDomain?: [number, number];
  yDomain?: [number, number];
  xPercent?: boolean;
  yPercent?: boolean;
}

const W = 760;
const H = 420;
const M = { left: 64, right: 230, top: 36, bottom: 52 };
const COLOURS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#7f7f7f",
  "#bcbd22",
];
const MARKERS = ["circle", "square", "triangle", "diamond"] as const;
const HLINES = [
  { stroke: "#444", dash: "6 4" },
  { stroke: "#999", dash: "2 3" },
];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const f = (v: number) => (Math.round(v * 10) / 10).toString();

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function domain(values: number[], given: [number, number] | undefined): [number, number] {
  if (given) return given;
  const finite = values.filter(Number.isFinite);
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (!(hi > lo)) [lo, hi] = [lo - 0.5, hi + 0.5];
  const pad = (hi - lo) * 0.06;
  return [lo - pad, hi + pad];
}

function marker(kind: (typeof MARKERS)[number], x: number, y: number, colour: string): string {
  const s = 4;
  switch (kind) {
    case "circle":
      return `<circle cx="${f(x)}" cy="${f(y)}" r="${s}" fill="${colour}"/>`;
    case "square":
      return `<rect x="${f(x - s)}" y="${f(y - s)}" width="${2 * s}" height="${2 * s}" fill="${colour}"/>`;
    case "triangle":
      return `<path d="M${f(x)},${f(y - s - 1)}L${f(x + s + 1)},${f(y + s)}L${f(x - s - 1)},${f(y + s)}Z" fill="${colour}"/>`;
    case "diamond":
      return `<path d="M${f(x)},${f(y - s - 1)}L${f(x + s + 1)},${f(y)}L${f(x)},${f(y + s + 1)}L${f(x - s - 1)},${f(y)}Z" fill="${colour}"/>`;
  }
}

export function renderPlot(plot: Plot): string {
  const xs = plot.series.flatMap((s) => s.points.map((p) => p.x));
  const ys = [...plot.series.flatMap((s) => s.points.map((p) => p.y)), ...(plot.hlines ?? []).map((h) => h.y)];
  const [x0, x1] = domain(xs, plot.xDomain);
  const [y0, y1] = domain(ys, plot.yDomain);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => M.top + ph - ((y - y0) / (y1 - y0)) * ph;
  const fmt = (v: number, percent?: boolean) =>
    percent ? `${Math.round(v * 1000) / 10}%` : String(Number(v.toPrecision(4)));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${M.left}" y="20" font-size="14" font-weight="bold">${esc(plot.title)}</text>`,
  ];
  for (const t of niceTicks(x0, x1)) {
    out.push(`<line x1="${f(sx(t))}" x2="${f(sx(t))}" y1="${M.top}" y2="${M.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${f(sx(t))}" y="${M.top + ph + 16}" text-anchor="middle">${fmt(t, plot.xPercent)}</text>`);
  }
  for (const t of niceTicks(y0, y1)) {
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${f(sy(t))}" y2="${f(sy(t))}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${f(sy(t) + 4)}" text-anchor="end">${fmt(t, plot.yPercent)}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 12}" text-anchor="middle">${esc(plot.xLabel)}</text>`);
  out.push(
    `<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(plot.yLabel)}</text>`,
  );
  const legend: string[] = [];
  let row = 0;
  const legendY = () => M.top + 8 + 18 * row++;
  for (const [i, h] of (plot.hlines ?? []).entries()) {
    const style = HLINES[i % HLINES.length] as (typeof HLINES)[number];
    const stroke = `stroke="${style.stroke}" stroke-width="1.5" stroke-dasharray="${style.dash}"`;
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${f(sy(h.y))}" y2="${f(sy(h.y))}" ${stroke}/>`);
    const y = legendY();
    legend.push(`<line x1="${W - M.right + 12}" x2="${W - M.right + 36}" y1="${y}" y2="${y}" ${stroke}/>`);
    legend.push(`<text x="${W - M.right + 42}" y="${y + 4}">${esc(h.name)}</text>`);
  }
  plot.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length] as string;
    const kind = MARKERS[i % MARKERS.length] as (typeof MARKERS)[number];
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (!s.pointsOnly && pts.length > 1) {
      const d = pts.map((p, j) => `${j === 0 ? "M" : "L"}${f(sx(p.x))},${f(sy(p.y))}`).join("");
      out.push(
        `<path d="${d}" fill="none" stroke="${colour}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5 3"' : ""}/>`,
      );
    }
    const showMarkers = s.pointsOnly || pts.length <= 24;
    for (const p of pts) {
      if (showMarkers) out.push(marker(kind, sx(p.x), sy(p.y), colour));
      if (p.label)
        out.push(
          `<text x="${f(sx(p.x) + 6)}" y="${f(sy(p.y) - 6)}" font-size="10" fill="${colour}">${esc(p.label)}</text>`,
        );
    }
    const y = legendY();
    legend.push(
      `<line x1="${W - M.right + 12}" x2="${W - M.right + 36}" y1="${y}" y2="${y}" stroke="${colour}" stroke-width="1.8"${s.pointsOnly ? ' stroke-opacity="0"' : ""}${s.dashed ? ' stroke-dasharray="5 3"' : ""}/>`,
    );
    legend.push(marker(kind, W - M.right + 24, y, colour));
    legend.push(`<text x="${W - M.right + 42}" y="${y + 4}">${esc(s.name)}</text>`);
  });
  out.push(...legend, "</svg>");
  return `${out.join("\n")}\n`;
}
