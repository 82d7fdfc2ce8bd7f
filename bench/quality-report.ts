/** `bench:quality`'s Markdown tables and SVG figures, from the analyses' JSON. */
import { TIERS } from "../scene-generator/vocabulary.js";
import { type Machine, machineLine } from "./machine.js";
import { markdownTable } from "./markdown.js";
import type { Agreement, Defaults, ExitAnalysis, MethodRow, SpeedupRow } from "./quality-analyses.js";
import type { PrunedMethod } from "./quality-run.js";
import type { Summary } from "./stats.js";
import { type Plot, renderPlot, type Series } from "./svg-plot.js";

export interface QualityResults {
  command: string;
  machine: Machine;
  packs: { small: string; large: string; layers: number; visualTokens: number };
  seed: number;
  count: number;
  quick: boolean;
  defaults: Defaults;
  tookSeconds: number;
  timing: { items: number; repeats: number };
  accuracy: MethodRow[];
  agreement: Agreement;
  exit: ExitAnalysis;
  speedup: SpeedupRow[];
}

const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}` : "–");
const num = (v: number, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : "–");
const r100 = (r: number | null) => (r === null ? "" : `${Math.round(r * 100)}%`);
const summaryCells = (s: Summary) => [num(s.mean, 3), num(s.q1, 3), num(s.median, 3), num(s.q3, 3)];

function accuracyTable(rows: MethodRow[]): string {
  return markdownTable(
    [
      "method",
      "K",
      "r",
      "threshold",
      "accuracy % (±95%)",
      ...TIERS,
      "MFLOPs/req",
      "accel. ms/req",
      "wall ms/req",
      "escalated %",
      "visual kept",
    ],
    rows.map((r) => [
      r.method,
      r.layer === null ? "" : String(r.layer),
      r100(r.retention),
      r.threshold === null ? "" : num(r.threshold, 3),
      `${pct(r.accuracy)} ±${pct(r.ci95)}`,
      ...TIERS.map((t) => pct(r.byTier[t] ?? Number.NaN)),
      num(r.flops / 1e6, 1),
      num(r.acceleratorMs, 2),
      num(r.wallMs, 2),
      pct(r.escalation),
      num(r.visualKept, 1),
    ]),
  );
}

export function renderMarkdown(q: QualityResults): string {
  const large = q.accuracy.find((r) => r.method === "large") as MethodRow;
  const layers = [...new Set(q.accuracy.flatMap((r) => (r.method === "sgp" && r.layer !== null ? [r.layer] : [])))];
  const retentions = [
    ...new Set(q.accuracy.flatMap((r) => (r.method === "sgp" && r.retention !== null ? [r.retention] : []))),
  ];
  const at = (m: PrunedMethod, layer: number, retention: number) =>
    q.accuracy.find((r) => r.method === m && r.layer === layer && r.retention === retention && r.threshold === null);
  const d = q.defaults;
  return `# bench:quality

\`${q.command}\` — ${q.count} held-out items from the scene generator (seed ${q.seed}), through the engine (no HTTP), in ${q.tookSeconds.toFixed(0)} s.
Machine: ${machineLine(q.machine)}. Packs: ${q.packs.small} / ${q.packs.large} (L = ${q.packs.layers} decoder layers, N = ${q.packs.visualTokens} visual tokens).
Defaults in force: exit threshold ${d.exitThreshold} (rule ${d.exitRule}), sgl escalates to sgp at K = ${d.pruneLayer}, r = ${r100(d.pruneRetention)}.
Absolute times are from this machine only; compare ratios. Every request pays its own vision encoder (the vision cache is off).

## 1. Accuracy against compute (Figure 3)

\`sgl\` rows are computed from the cached per-item small and sgp results at each threshold (sum of both costs when escalated), not re-run. Thresholds are deciles of the observed decision scores plus the configured one.

${accuracyTable(q.accuracy)}

![accuracy against FLOPs](quality-fig3.svg)

## 2. Single-layer against all-layer ranking (Figure 1a)

Accuracy % of the large model pruned at layer K to r of the visual tokens, by FastV (its own attention at layer K-1), by its own all-layer ranking (oracle, costs a full pass), by the small model's all-layer ranking (SGP), and at random. Unpruned large: ${pct(large.accuracy)}%.

${layers
  .map(
    (k) => `### K = ${k}

${markdownTable(
  ["r", "fastv", "oracle", "sgp", "random"],
  retentions.map((r) => [
    r100(r),
    ...(["fastv", "oracle", "sgp", "random"] as const).map((m) => pct(at(m, k, r)?.accuracy ?? Number.NaN)),
  ]),
)}

![ranking comparison at K = ${k}](quality-fig1a-k${k}.svg)`,
  )
  .join("\n\n")}

## 3. Small-large ranking agreement

Per item, the small model's all-layer ranking against the large model's (from its unpruned run), and a random ranking against the large model's.

${markdownTable(
  ["Spearman rho", "mean", "q1", "median", "q3"],
  [
    ["small vs large", ...summaryCells(q.agreement.spearman.small)],
    ["random vs large", ...summaryCells(q.agreement.spearman.random)],
  ],
)}

${markdownTable(
  ["top-r overlap with large", "small mean", "small median", "random mean", "random median"],
  q.agreement.overlap.map((o) => [
    r100(o.retention),
    num(o.small.mean, 3),
    num(o.small.median, 3),
    num(o.random.mean, 3),
    num(o.random.median, 3),
  ]),
)}

${markdownTable(
  ["evidence cells in top r", "small", "large", "random"],
  q.agreement.evidenceRecall.map((e) => [
    r100(e.retention),
    num(e.small.mean, 3),
    num(e.large.mean, 3),
    num(e.random.mean, 3),
  ]),
)}

## 4. Exit decision scores (Figure 4)

Accuracy of the combined system (exit: the small answer; else sgp at K = ${q.exit.fallback.layer}, r = ${r100(q.exit.fallback.retention)}) against the fraction of requests that exit, sweeping the threshold over every observed score. Small only: ${pct(q.exit.smallAccuracy)}%; always escalating: ${pct(q.exit.fallbackAccuracy)}%. Area = ∫ (curve − small-only accuracy) d(exit fraction), in accuracy points; larger is better.

${markdownTable(
  ["score", "area (points)", "accuracy at 50% exit %"],
  q.exit.curves.map((c) => [c.score, num(c.area * 100, 2), pct(c.accuracyAtHalf)]),
)}

![exit curves](quality-fig4.svg)

## 5. Speed-up against the limit

The large model pruned by SGP relative to unpruned. Limit = L / (K + (L−K)·r) counts only decoder layers over visual tokens; the measured FLOPs also count text tokens, the vision encoder and the LM head. Times are medians of side-by-side runs in rotating order on ${q.timing.items} items × ${q.timing.repeats} repeats: the prefill alone (where pruning acts) and the whole engine request (vision encoder, prefill and decoding, whose length can differ between the pruned and unpruned answer).

${markdownTable(
  [
    "K",
    "r",
    "limit",
    "FLOPs ratio",
    "prefill ms unpruned",
    "pruned",
    "prefill speed-up",
    "request ms unpruned",
    "pruned",
    "request speed-up",
  ],
  q.speedup.map((s) => [
    String(s.layer),
    r100(s.retention),
    num(s.limit),
    num(s.flopsRatio),
    num(s.timing?.prefill.unprunedMs ?? Number.NaN, 3),
    num(s.timing?.prefill.prunedMs ?? Number.NaN, 3),
    num(s.timing?.prefill.speedup ?? Number.NaN),
    num(s.timing?.request.unprunedMs ?? Number.NaN, 3),
    num(s.timing?.request.prunedMs ?? Number.NaN, 3),
    num(s.timing?.request.speedup ?? Number.NaN),
  ]),
)}
`;
}

/** The figures, by file name. */
export function renderFigures(q: QualityResults): Record<string, string> {
  const rows = q.accuracy;
  const point = (r: MethodRow, label?: string) => ({ x: r.flops / 1e6, y: r.accuracy, ...(label ? { label } : {}) });
  const layers = [...new Set(rows.flatMap((r) => (r.method === "sgp" && r.layer !== null ? [r.layer] : [])))];
  const curve = (m: PrunedMethod, k: number, labels = false): Series => ({
    name: `${m} K=${k}`,
    points: rows
      .filter((r) => r.method === m && r.layer === k && r.threshold === null)
      .sort((a, b) => a.flops - b.flops)
      .map((r) => point(r, labels ? r100(r.retention) : undefined)),
  });
  const small = rows.find((r) => r.method === "small") as MethodRow;
  const large = rows.find((r) => r.method === "large") as MethodRow;
  const fig3: Plot = {
    title: "Accuracy against compute (cf. paper Fig. 3)",
    xLabel: "mean MFLOPs per request",
    yLabel: "accuracy",
    yPercent: true,
    series: [
      ...layers.flatMap((k) => [curve("sgp", k, k === layers[0]), curve("fastv", k)]),
      {
        name: "sgl (threshold sweep)",
        points: rows
          .filter((r) => r.method === "sgl")
          .sort((a, b) => a.flops - b.flops)
          .map((r) => point(r)),
      },
      { name: "large only", points: [point(large)], pointsOnly: true },
      { name: "small only", points: [point(small)], pointsOnly: true },
    ],
  };
  const figures: Record<string, string> = { "quality-fig3.svg": renderPlot(fig3) };
  for (const k of layers) {
    figures[`quality-fig1a-k${k}.svg`] = renderPlot({
      title: `Pruning the large model at layer K = ${k} (cf. paper Fig. 1a)`,
      xLabel: "visual tokens kept (r)",
      yLabel: "accuracy",
      xPercent: true,
      yPercent: true,
      series: (["fastv", "oracle", "sgp", "random"] as const).map((m) => ({
        name: m === "oracle" ? "large all-layer (oracle)" : m,
        points: rows
          .filter((r) => r.method === m && r.layer === k)
          .map((r) => ({ x: r.retention ?? 0, y: r.accuracy }))
          .sort((a, b) => a.x - b.x),
      })),
      hlines: [
        { y: large.accuracy, name: "large unpruned" },
        { y: small.accuracy, name: "small only" },
      ],
    });
  }
  figures["quality-fig4.svg"] = renderPlot({
    title: "Exit decision scores (cf. paper Fig. 4)",
    xLabel: "fraction of requests that exit early",
    yLabel: "accuracy of the combined system",
    xPercent: true,
    yPercent: true,
    xDomain: [0, 1],
    series: q.exit.curves.map((c) => ({
      name: c.score.replace(" (confidence + consistency) / 2", ""),
      dashed: c.score.startsWith("random"),
      points: c.points.map((p) => ({ x: p.exitFraction, y: p.accuracy })),
    })),
    hlines: [{ y: q.exit.smallAccuracy, name: "small only" }],
  });
  return figures;
}
