/**
 * bench:peers' report: `peers.json` (every median and run), `peers.md` (the tables, verdicts and breakdowns) and
 * `peers-<type>-<image>.svg` (SGL's latency against the exit rate beside llama.cpp's and Stitch's large paths).
 */
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Machine } from "./machine.js";
import { fixed, markdownTable } from "./markdown.js";
import type { StitchPair } from "./peers-stitch.js";
import type { Comparison, Summary } from "./peers-summary.js";
import { renderPlot } from "./svg-plot.js";

/** The CPU's extensions that decide which kernels either side can use. */
const KERNEL_FLAGS = ["avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8"];

export interface PeersResult {
  command: string;
  started: string;
  machine: Machine;
  /** llama.cpp's cache folder (its build.stamp says the version and the instruction sets built for). */
  llamaBuild: string;
  sizes: { large: string; small?: string };
  request: {
    question: string;
    steps: number;
    threads: number;
    repeats: number;
    warmup: number;
    photo: string;
    retention: number;
    pruneLayer: number;
    /** --apart: one side resident at a time (small, large, llama.cpp), each side's rounds together. */
    apart?: boolean;
  };
  /** The large path through the HTTP function, beside the engine's time for the same number of tokens. */
  http?: {
    type: string;
    image: string;
    runs: { ms: number; completionTokens: number; promptTokens: number }[];
    medianMs: number;
    completionTokens: number;
    engineMs: number;
    overheadMs: number;
  };
  /** False with --llama-only: llama.cpp's side alone, no Stitch pack. */
  stitchSide: boolean;
  /** The bench process's VmHWM at the end: every Stitch pair it loaded, one weight type at a time. */
  stitchPeakRssBytes: number;
  cells: (Comparison & {
    type: string;
    image: string;
    visualTokens?: number;
    llamaAnswer: string;
    stitchLoads?: StitchPair["loads"];
  })[];
}

const GGUF = { float16: "F16", int8: "Q8_0", int4: "Q4_K_M" } as Record<string, string>;
const gib = (bytes?: number) => (bytes === undefined ? "–" : `${(bytes / 2 ** 30).toFixed(2)} GiB`);
const ms = (v?: number) => (v === undefined ? "–" : fixed(v, v >= 100 ? 0 : 1));

function cpuFlags(): string[] {
  const flags = /^flags\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.split(" ") ?? [];
  return KERNEL_FLAGS.filter((f) => flags.includes(f));
}

function llamaStamp(dir: string): string {
  try {
    return readFileSync(join(dir, "build.stamp"), "utf8").trim().split("\n").join("; ");
  } catch {
    return "(no build.stamp)";
  }
}

function row(name: string, s: Summary | undefined, base: Summary): string[] {
  if (!s) return [name, "–", "–", "–", "–", "–", "–", "–", "–"];
  return [
    name,
    ms(s.visionMs),
    ms(s.prefillMs),
    ms(s.decodeMsPerToken),
    ms(s.overheadMs),
    ms(s.e2eMs),
    `${(s.e2eMs / base.e2eMs).toFixed(2)}×`,
    String(s.promptTokens),
    s.runs.map((r) => ms(r)).join(", "),
  ];
}

function cellMarkdown(c: PeersResult["cells"][number], r: PeersResult): string[] {
  const L = r.sizes.large;
  const lines = [
    `### ${c.type} (llama.cpp ${GGUF[c.type]}), image ${c.image}${c.visualTokens ? ` (${c.visualTokens} visual tokens in Stitch)` : ""}`,
    "",
    markdownTable(
      [
        "path",
        "vision ms",
        "prefill ms",
        "decode ms/token",
        "overhead ms",
        "request ms",
        "vs llama.cpp",
        "prompt tokens",
        "runs (request ms)",
      ],
      [
        row(`llama.cpp ${L}`, c.llama, c.llama),
        row(`Stitch ${L} large, unpruned`, c.large, c.llama),
        row(`Stitch ${L} large, SGP r = ${r.request.retention}`, c.pruned, c.llama),
        row(`Stitch ${r.sizes.small ?? "–"} small (SGL's first step)`, c.small, c.llama),
      ],
    ),
    "",
  ];
  const lengths = new Set([c.llama, c.large, c.pruned, c.small].flatMap((s) => (s ? [s.promptTokens] : [])));
  if (lengths.size > 1) {
    lines.push(
      `**The prompts differ in length (${[...lengths].join(" vs ")} tokens): the sides resized the image differently.**`,
      "",
    );
  }
  if (c.sgl.length) {
    lines.push(
      markdownTable(
        ["SGL exit rate", ...c.sgl.map((p) => `${Math.round(p.exitRate * 100)}%`)],
        [
          ["Stitch SGL request ms", ...c.sgl.map((p) => ms(p.ms))],
          ["vs llama.cpp", ...c.sgl.map((p) => `${(p.ms / c.llama.e2eMs).toFixed(2)}×`)],
        ],
      ),
      "",
    );
  }
  const verdict = (name: string, v?: { ratio: number; target: string; pass: boolean }) =>
    v
      ? `- ${name}: ${v.ratio.toFixed(2)}× llama.cpp (target ${v.target}): **${v.pass ? "PASS" : "FAIL"}**`
      : `- ${name}: not measured`;
  lines.push(
    verdict("Stitch's unpruned large path", c.largeVerdict),
    verdict("Stitch's SGL at 70% exit", c.sglVerdict),
  );
  if (c.gaps.length) {
    lines.push(
      "",
      "Where Stitch's unpruned large path spends more than llama.cpp:",
      "",
      markdownTable(
        ["part", "Stitch ms", "llama.cpp ms", "extra ms per request"],
        c.gaps.map((g) => [
          g.part + (g.part === "decode" ? " (per token)" : ""),
          ms(g.stitchMs),
          ms(g.peerMs),
          ms(g.extraMs),
        ]),
      ),
    );
  }
  if (c.stitchLoads?.length) {
    lines.push(
      "",
      `Memory: llama.cpp's peak RSS (text model + mmproj + context) ${gib(c.llama.peakRssBytes)}; Stitch's engines added ${c.stitchLoads.map((l) => `${l.role} ${gib(l.rssBytes)} (load ${ms(l.ms)} ms)`).join(", ")}${r.request.apart ? ` (with --apart each model loads after the previous one was released, so the second's figure is net of memory the first freed; the bench process's peak, ${gib(r.stitchPeakRssBytes)}, is the one to read)` : ""}.`,
    );
  } else {
    lines.push("", `Memory: llama.cpp's peak RSS (text model + mmproj + context) ${gib(c.llama.peakRssBytes)}.`);
  }
  lines.push(
    "",
    `llama.cpp's answer: \`${JSON.stringify(c.llamaAnswer.slice(0, 80))}\` (random weights; the checkpoints' small tokenizer has 1,137 tokens and prints nothing for the ids above them)`,
    "",
  );
  return lines;
}

function plot(c: PeersResult["cells"][number], r: PeersResult): string {
  const xs = [0, Math.max(...c.sgl.map((p) => p.exitRate), 0.9)];
  const flat = (name: string, y?: number) =>
    y === undefined ? [] : [{ name, dashed: true, points: xs.map((x) => ({ x, y })) }];
  return renderPlot({
    title: `${r.sizes.small ?? ""}→${r.sizes.large}, ${c.type} / ${GGUF[c.type]}, image ${c.image}: latency per request`,
    xLabel: "SGL exit rate (requests the small model answers)",
    yLabel: "ms per request",
    xPercent: true,
    series: [
      { name: "Stitch SGL", points: c.sgl.map((p) => ({ x: p.exitRate, y: p.ms })) },
      ...flat(`llama.cpp ${r.sizes.large} alone`, c.llama.e2eMs),
      ...flat("Stitch large, unpruned", c.large?.e2eMs),
      ...flat(`Stitch large, SGP r=${r.request.retention}`, c.pruned?.e2eMs),
    ],
  });
}

export async function writeReport(dir: string, r: PeersResult): Promise<void> {
  await mkdir(dir, { recursive: true });
  const m = r.machine;
  const md = [
    "# Stitch beside llama.cpp (bench:peers)",
    "",
    "**Random weights: time and memory, not accuracy. CPU only, one request at a time.**",
    "",
    `- Command: \`${r.command}\` (started ${r.started})`,
    `- Machine: ${m.cpu}, ${m.cores} cores (flags: ${cpuFlags().join(", ")}), ${m.memory_gib} GiB, ${m.os}, Node ${m.node}; load ${m.load_at_start} at start`,
    `- llama.cpp: ${llamaStamp(r.llamaBuild)}`,
    `- Models: large ${r.sizes.large}${r.sizes.small ? `, small ${r.sizes.small} (guides the large one in SGL)` : ""} (${r.sizes.large.startsWith("tiny") ? "the tiny random-weight Qwen2.5-VL pair: a pipeline check, not a comparison" : "real-dimension random-weight Qwen2.5-VL"}); the vision tower in F16 on llama.cpp's side (mmproj), in the pack's type on Stitch's`,
    `- Request: ${r.request.photo} resized (fit fill) to each image size, "${r.request.question}" through each side's chat template, greedy, ${r.request.steps} decode steps after the prefill (${r.request.steps + 1} tokens; end of turn ignored), ${r.request.threads} threads; medians of ${r.request.repeats} rounds after ${r.request.warmup} uncounted, ${r.request.apart ? "**one side resident at a time (`--apart`)**: the small model's rounds, then the large model's (unpruned and pruned in rotating order), then llama.cpp's, each side unloaded before the next" : "every side resident, the paths in rotating order"}`,
    "- llama.cpp's request = vision (llama-mtmd-cli's encode timer) + prefill and decode (llama-bench pp at the request's prompt length, tg); Stitch's = the engine's wall clock over vision, prompt, prefill and steps (overhead = what is left after the three parts). SGL = small + (1 − exit rate) × SGP-pruned large.",
    r.stitchSide
      ? `- Stitch's bench process peak RSS (all pairs loaded in turn): ${gib(r.stitchPeakRssBytes)}`
      : "- **Stitch's side was not run (`--llama-only`): llama.cpp's figures alone, no comparison and no verdict.**",
    "",
    ...(r.http
      ? [
          `Serving overhead (${r.http.type}, ${r.http.image}, the unpruned large path through the HTTP function, ${r.http.runs.length} request(s), ${r.http.completionTokens} tokens): ${ms(r.http.medianMs)} ms against the engine's ${ms(r.http.engineMs)} ms for as many tokens: **${ms(r.http.overheadMs)} ms**${r.http.overheadMs < 0 ? " (below zero: within the runs' spread, the HTTP request was faster than the engine's median)" : " for the upload's decoding, validation, the signature check and JSON"}.`,
          "",
        ]
      : []),
    ...r.cells.flatMap((c) => cellMarkdown(c, r)),
  ];
  await writeFile(join(dir, "peers.md"), `${md.join("\n")}\n`);
  await writeFile(join(dir, "peers.json"), `${JSON.stringify(r, null, 2)}\n`);
  for (const c of r.cells) {
    if (c.sgl.length) await writeFile(join(dir, `peers-${c.type}-${c.image}.svg`), plot(c, r));
  }
}
