/**
 * bench/real-size.ts's results and their Markdown: every verdict is computed here from the measurements.
 */
import type { PackMemory } from "../gpu-worker/engine/pack-memory.js";
import type { ModelPackManifest } from "../shared/index.js";
import type { Machine } from "./machine.js";
import { machineLine } from "./machine.js";
import { markdownTable } from "./markdown.js";
import type { CostPoint } from "./sgl-cost.js";

export interface PathRun {
  name: string;
  e2eMs: number;
  runsMs: number[];
  visionMs: number;
  embedMs: number;
  prefillMs: number;
  decodeMs: number;
  decodeSteps: number;
  /** End to end minus every session run: image decoding and resizing, tensors, copies, prompt, sampling. */
  hostMs: number;
  tokens: number;
  keptVisual?: number;
}

/** The exporter's own record of its comparison with transformers (manifest provenance.verification). */
interface Verification {
  logits?: number;
  vision?: number;
  attention_received?: number;
  tokens_compared?: number;
  near_ties?: number;
  relative?: Record<string, number>;
}

export interface ExportFigures {
  wallSeconds?: number;
  peakRssBytes?: number;
  verification: Verification;
  tolerance: Record<string, number>;
}

interface PackLine {
  name: string;
  version: string;
  dtype: string;
  layers: number;
  hidden: number;
  pruneLayer?: number;
}

export interface RealSizeResults {
  command: string;
  machine: Machine;
  date: string;
  threads: number;
  repeats: number;
  maxTokens: number;
  question: string;
  photo: string;
  promptTokens: number;
  visualTokens: number;
  small: PackLine;
  large: PackLine;
  load: { smallMs: number; largeMs: number; rssStart: number; rssSmall: number; rssLarge: number };
  memory: { small: PackMemory; large: PackMemory };
  paths: { small: PathRun; large: PathRun; escalation: PathRun };
  cost: { curve: CostPoint[]; breakEven: number | null; at70: number };
  prefill: {
    unprunedMs: number;
    unprunedRunsMs: number[];
    pruned: {
      retention: number;
      keptVisual: number;
      ms: number;
      runsMs: number[];
      speedUp: number;
      limit: number;
      ofLimit: number;
      limitForPrompt: number;
    }[];
  };
  multiTile?: {
    tiles: number;
    promptTokens: number;
    smallVisionMs: number;
    largeVisionMs: number;
    smallPrefillMs: number;
    largePrefillMs: number;
  };
  exports: { small?: ExportFigures; large?: ExportFigures };
  peakRss: number;
}

/** The targets of issue 27, with the measured value each is judged on. */
export const TARGETS = { sglAt70: 0.4, ofFlopsLimit: 0.85, ofFlopsLimitAt: [0.09, 0.35] };

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
const ms = (t: number) => (t >= 100 ? t.toFixed(0) : t.toFixed(1));
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
/** An error: 3 significant digits, in exponent form below 0.01 (float32 errors are ~1e-5). */
const err = (x: number | undefined) =>
  x === undefined || !Number.isFinite(x) ? "–" : Math.abs(x) < 0.01 ? x.toExponential(1) : x.toPrecision(3);

/** GNU `time -v` output (wall clock and peak RSS of the export) and the pack's own verification record. */
export function exportFigures(timeOutput: string | undefined, manifest: ModelPackManifest): ExportFigures {
  const wall = timeOutput && /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/.exec(timeOutput)?.[1];
  const peak = timeOutput && /Maximum resident set size \(kbytes\): (\d+)/.exec(timeOutput)?.[1];
  return {
    ...(wall && { wallSeconds: wall.split(":").reduce((acc, part) => acc * 60 + Number(part), 0) }),
    ...(peak && { peakRssBytes: Number(peak) * 1024 }),
    // The exporter's record (provenance is free-form in the pack contract).
    verification: (manifest.provenance.verification ?? {}) as Verification,
    tolerance: manifest.conformance.tolerance,
  };
}

function verdicts(r: RealSizeResults): string[] {
  const at = (retention: number) => r.prefill.pruned.find((p) => p.retention === retention);
  const lines = [
    `SGL at a 70% exit rate: ${pct(r.cost.at70)} of the large model alone (target ≤ ${pct(TARGETS.sglAt70)}): ${
      r.cost.at70 <= TARGETS.sglAt70 ? "met" : "missed"
    }`,
  ];
  for (const retention of TARGETS.ofFlopsLimitAt) {
    const p = at(retention);
    if (!p) continue;
    lines.push(
      `pruned prefill at r = ${retention}: ${pct(p.ofLimit)} of the FLOPs limit (target ≥ ${pct(TARGETS.ofFlopsLimit)}): ${
        p.ofLimit >= TARGETS.ofFlopsLimit ? "met" : "missed"
      }`,
    );
  }
  return lines;
}

function pathRows(r: RealSizeResults): string[][] {
  return Object.values(r.paths).map((p) => [
    p.name,
    ms(p.e2eMs),
    ms(p.visionMs),
    ms(p.prefillMs),
    `${ms(p.decodeMs)} (${p.decodeSteps} steps, ${p.decodeSteps ? ms(p.decodeMs / p.decodeSteps) : "–"} per token)`,
    ms(p.embedMs),
    `${ms(p.hostMs)} (${pct(p.hostMs / p.e2eMs)})`,
    p.runsMs.map(ms).join(", "),
  ]);
}

function exportRows(r: RealSizeResults): string[][] {
  return (["small", "large"] as const).flatMap((role) => {
    const e = r.exports[role];
    if (!e) return [];
    const v = e.verification;
    const rel = v.relative ?? {};
    return [
      [
        `${role}: ${r[role].name} (${r[role].dtype})`,
        e.wallSeconds !== undefined ? `${(e.wallSeconds / 60).toFixed(1)} min` : "–",
        e.peakRssBytes !== undefined ? gib(e.peakRssBytes) : "–",
        `${err(v.logits)} (${err(rel.logits)})`,
        `${err(v.vision)} (${err(rel.vision)})`,
        `${err(v.attention_received)} (${err(rel.attention_received)})`,
        `${v.tokens_compared ?? "–"} / ${v.near_ties ?? "–"}`,
        `${e.tolerance.logits} / ${e.tolerance.attention}`,
      ],
    ];
  });
}

export function renderRealSize(r: RealSizeResults): string {
  const { small: s, large: l, paths } = r;
  const out: string[] = [
    `# Stitch engine at real sizes: ${s.name} guiding ${l.name} (random weights, CPU)`,
    "",
    "**Random weights: these numbers say nothing about accuracy, only time and memory. CPU (onnxruntime's CPU",
    `execution provider, ${r.threads} intra-op threads per session), not GPU.**`,
    "",
    `- Command: \`${r.command}\``,
    `- Machine: ${machineLine(r.machine)}; ${r.date}`,
    `- Small pack: ${s.name} (${s.version}), ${s.dtype}, ${s.layers} layers, hidden ${s.hidden}`,
    `- Large pack: ${l.name} (${l.version}), ${l.dtype}, ${l.layers} layers, hidden ${l.hidden}, pruned at K = ${l.pruneLayer}`,
    `- Image: ${r.photo} resized to one tile (${r.visualTokens} visual tokens); question "${r.question}"; prompt ${r.promptTokens} tokens; ${r.maxTokens} tokens generated (random weights rarely stop early)`,
    `- Each time is the median of ${r.repeats} runs, paths in rotating order, a fresh image each run (no cache)`,
    "",
    "## Verdicts (computed from the measurements below)",
    "",
    ...verdicts(r).map((v) => `- ${v}`),
    `- Break-even exit rate (SGL = the large model alone): ${
      r.cost.breakEven === null ? "none (the small path alone costs the large model's time)" : pct(r.cost.breakEven)
    }`,
    "",
    "## Each path end to end, and where its time goes (ms)",
    "",
    markdownTable(["path", "end to end", "vision", "prefill", "decode", "embed", "host (rest)", "runs"], pathRows(r)),
    "",
    `Host work is the end-to-end time minus every onnxruntime session run: image decoding and resizing, tensor
building and copies, the prompt, sampling, the SEE decision. The escalation kept ${paths.escalation.keptVisual ?? "–"} of ${r.visualTokens} visual tokens.`,
    "",
    "## SGL against the large model alone, over the exit rate",
    "",
    `SGL per request = small path + (1 − exit rate) × escalation; the large model alone: ${ms(paths.large.e2eMs)} ms.`,
    "",
    markdownTable(
      ["exit rate", "SGL ms", "SGL / large alone"],
      r.cost.curve.map((c) => [pct(c.exitRate), ms(c.sglMs), pct(c.ratio)]),
    ),
    "",
    `## Large prefill pruned at K = ${l.pruneLayer} of L = ${l.layers} (keep = the top r of the small model's ranking)`,
    "",
    markdownTable(
      [
        "r",
        "kept visual",
        "prefill ms",
        "runs ms",
        "speed-up",
        "FLOPs limit L/(K+(L−K)·r)",
        "of the limit",
        "limit with the text tokens",
      ],
      [
        [
          "1 (unpruned)",
          String(r.visualTokens),
          ms(r.prefill.unprunedMs),
          r.prefill.unprunedRunsMs.map(ms).join(", "),
          "1",
          "1",
          "–",
          "1",
        ],
        ...r.prefill.pruned.map((p) => [
          String(p.retention),
          String(p.keptVisual),
          ms(p.ms),
          p.runsMs.map(ms).join(", "),
          p.speedUp.toFixed(2),
          p.limit.toFixed(2),
          pct(p.ofLimit),
          p.limitForPrompt.toFixed(2),
        ]),
      ],
    ),
    "",
    "The limit counts only the decoder's linear FLOPs with every prompt token visual; the last column keeps the",
    `prompt's ${r.promptTokens - r.visualTokens} text tokens, which are never pruned.`,
    "",
    "## Load and memory",
    "",
    markdownTable(
      ["measure", "value"],
      [
        ["RSS before loading", gib(r.load.rssStart)],
        ["small engine load (sessions + warm-up)", `${ms(r.load.smallMs)} ms`],
        ["RSS after the small load", gib(r.load.rssSmall)],
        ["large engine load (sessions + warm-up)", `${ms(r.load.largeMs)} ms`],
        ["RSS after the large load", gib(r.load.rssLarge)],
        ["peak RSS of the benchmark (VmHWM)", gib(r.peakRss)],
        ...(["small", "large"] as const).map((role) => [
          `weights per graph, ${role} (the engine's load-time estimate)`,
          r.memory[role].graphs.map((g) => `${g.file} ${gib(g.bytes)}`).join("; "),
        ]),
      ],
    ),
  ];
  if (r.multiTile) {
    const m = r.multiTile;
    out.push(
      "",
      `## ${m.tiles} tiles (the photo at twice the tile's width: 2 tiles + thumbnail), prompt ${m.promptTokens} tokens`,
      "",
      markdownTable(
        ["measure", "total ms", "per tile ms"],
        [
          ["vision, small pack", ms(m.smallVisionMs), ms(m.smallVisionMs / m.tiles)],
          ["vision, large pack", ms(m.largeVisionMs), ms(m.largeVisionMs / m.tiles)],
          ["small prefill", ms(m.smallPrefillMs), ms(m.smallPrefillMs / m.tiles)],
          ["large prefill unpruned", ms(m.largePrefillMs), ms(m.largePrefillMs / m.tiles)],
        ],
      ),
    );
  }
  const rows = exportRows(r);
  if (rows.length) {
    out.push(
      "",
      "## The exports (piece by piece; errors against transformers in float32, relative to its largest value)",
      "",
      markdownTable(
        [
          "pack",
          "export time",
          "peak RSS",
          "logits error",
          "vision error",
          "attention received error",
          "tokens compared / near-ties",
          "tolerance (logits / attention)",
        ],
        rows,
      ),
    );
  }
  return `${out.join("\n")}\n`;
}
