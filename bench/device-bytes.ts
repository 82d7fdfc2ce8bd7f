/**
 * On paper, for GPUs: the bytes that cross between host and device per request, by path, when the engine runs
 * a pack on onnxruntime-node's CUDA provider as it runs it on the CPU today. onnxruntime-node returns every output
 * to the host (`preferredOutputLocation`, IO binding, is "available only in ONNXRuntime Web for WebGL and WebGPU
 * EP": onnxruntime-common's InferenceSession typings), so every call sends its inputs down and its outputs up:
 * each decode step sends the whole KV cache down and takes it back one position longer. Computed from the packs'
 * manifests (dimensions, segments), not measured: no GPU was at hand. A third figure: the same request with a
 * pack's decode_steps graph (K tokens per run, model-export --decode-steps K): the cache crosses once per K tokens.
 *
 *   npx tsx bench/device-bytes.ts --small DIR --large DIR [--tiles 1,13] [--tokens 8] [--text 20]
 *     [--retention 0.35] [--decode-steps 4] [--link-gbs 50] [--out bench/results/device-bytes.md]
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { Command } from "commander";
import { readPackManifest } from "../gpu-worker/engine/model-pack.js";
import { decimal, integer } from "../tools/cli-options.js";
import { markdownTable } from "./markdown.js";

/** What the byte count needs of a pack (all from its manifest). */
export interface PackShape {
  name: string;
  hidden: number;
  layers: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  /** Each segment's [first, end) layers. */
  segments: [number, number][];
  tile: { width: number; height: number };
  tokensPerTile: number;
}

export interface Request {
  tiles: number;
  /** Text tokens of the prompt (the chat template and the question). */
  text: number;
  /** Tokens generated: the first from the prefill, the rest one decode step each. */
  tokens: number;
  /** Pruning from layer `layer` on, keeping this share of the visual tokens (absent: unpruned). */
  prune?: { layer: number; retention: number };
}

export interface Bytes {
  vision: number;
  prefill: number;
  decode: number;
  total: number;
}

const F32 = 4;

/** The KV cache of `positions` positions for the layers [first, end): keys and values, float32. */
const kv = (p: PackShape, first: number, end: number, positions: number) =>
  2 * (end - first) * p.kvHeads * positions * p.headDim * F32;

/**
 * One request's host↔device bytes, both directions, as the engine calls the graphs today: vision (pixels down,
 * visual embeddings up), the embed graph per call, each segment per call (hidden states, positions and mask down,
 * its past KV down; presents, attention sums and hidden out or logits up).
 */
export function requestBytes(p: PackShape, r: Request): Bytes {
  const visual = r.tiles * p.tokensPerTile;
  const prompt = r.text + visual;
  const vision = r.tiles * 3 * p.tile.width * p.tile.height * F32 + visual * p.hidden * F32;
  const kept = (first: number) =>
    r.prune && first >= r.prune.layer ? r.text + Math.max(1, Math.round(r.prune.retention * visual)) : prompt;
  const segmentCall = (first: number, end: number, rows: number, past: number, last: boolean) => {
    const down = rows * p.hidden * F32 + rows * 8 + (past + rows) * 8 + rows * F32 + kv(p, first, end, past);
    const up =
      kv(p, first, end, past + rows) + 2 * (past + rows) * F32 + (last ? p.vocab * F32 : rows * p.hidden * F32);
    return down + up;
  };
  const lastEnd = p.layers;
  let prefill = prompt * 8 + prompt * p.hidden * F32; // ids down, text embeddings up
  for (const [first, end] of p.segments) prefill += segmentCall(first, end, kept(first), 0, end === lastEnd);
  let decode = 0;
  for (let step = 1; step < r.tokens; step++) {
    decode += 8 + p.hidden * F32;
    for (const [first, end] of p.segments) {
      decode += segmentCall(first, end, 1, kept(first) + step - 1, end === lastEnd);
    }
  }
  return { vision, prefill, decode, total: vision + prefill + decode };
}

/**
 * The same request with a decode_steps graph of K steps (gpu-worker/engine/decoder-run.ts decodeSteps): vision and
 * prefill as today, then ⌈(tokens − 1) / K⌉ runs, each sending its token and position and every layer's past KV
 * down, and taking K ids, K probabilities, every layer's present KV (past + K) and each segment's K attention rows
 * (past + K wide) up. The last run may decode tokens past max_tokens that the engine discards: counted, they cross.
 */
export function decodeStepsBytes(p: PackShape, r: Request, k: number): Bytes {
  const today = requestBytes(p, r);
  const visual = r.tiles * p.tokensPerTile;
  const kept = (first: number) =>
    r.prune && first >= r.prune.layer ? r.text + Math.max(1, Math.round(r.prune.retention * visual)) : r.text + visual;
  let decode = 0;
  for (let run = 0; run * k < r.tokens - 1; run++) {
    decode += 2 * 8 + k * 8 + k * F32;
    for (const [first, end] of p.segments) {
      const past = kept(first) + run * k;
      decode += kv(p, first, end, past) + kv(p, first, end, past + k) + k * (past + k) * F32;
    }
  }
  return { ...today, decode, total: today.vision + today.prefill + decode };
}

/**
 * The same request with the KV cache, the hidden states between segments and the visual embeddings kept on the
 * device (IO binding, or decoding inside one graph run): pixels and ids go down, each step's logits (or its
 * token and the SEE statistics) and SGP's attention sums come up.
 */
export function residentBytes(p: PackShape, r: Request): Bytes {
  const visual = r.tiles * p.tokensPerTile;
  const prompt = r.text + visual;
  const vision = r.tiles * 3 * p.tile.width * p.tile.height * F32;
  const prefill = prompt * 8 + prompt * F32 + p.vocab * F32;
  const decode = (r.tokens - 1) * (8 + (prompt + r.tokens) * F32 + p.vocab * F32);
  return { vision, prefill, decode, total: vision + prefill + decode };
}

export async function shapeOf(dir: string): Promise<PackShape> {
  const m = await readPackManifest(dir);
  if (m.image.processor !== "tiles") throw new Error(`${dir}: processor ${m.image.processor}: only tiles packs here`);
  const d = m.decoder;
  return {
    name: m.name,
    hidden: d.hidden,
    layers: d.layers,
    kvHeads: d.kv_heads,
    headDim: d.head_dim,
    vocab: d.vocab,
    segments: m.graphs.segments.map((s) => [s.first_layer, s.end_layer]),
    tile: m.image.tile,
    tokensPerTile: m.image.tokens_per_tile,
  };
}

async function main() {
  const list = (v: string) => v.split(",").map(integer(1, 40));
  const opts = new Command()
    .requiredOption("--small <dir>")
    .requiredOption("--large <dir>")
    .option("--tiles <list>", "tiles per image (InternVL: 1, or 12 + thumbnail = 13)", list, [1, 13])
    .option("--tokens <n>", "tokens generated", integer(1, 4096), 8)
    .option("--text <n>", "text tokens of the prompt", integer(1, 100_000), 20)
    .option("--retention <r>", "the escalation's share of visual tokens kept", decimal(0, 1), 0.35)
    .option("--decode-steps <k>", "tokens per run of a decode_steps graph", integer(2, 64), 4)
    .option("--link-gbs <n>", "host link, GB/s per direction, to turn bytes into time (an assumption)", decimal(1), 50)
    .option("--out <file>", "Markdown results", "bench/results/device-bytes.md")
    .parse()
    .opts();
  const small = await shapeOf(opts.small);
  const large = await shapeOf(opts.large);
  const K = large.segments[0]?.[1] ?? 0;
  const mb = (b: number) => (b / 1e6).toFixed(1);
  const ms = (b: number) => ((b / (opts.linkGbs * 1e9)) * 1e3).toFixed(1);
  const rows: string[][] = [];
  for (const tiles of opts.tiles) {
    const req = { tiles, text: opts.text, tokens: opts.tokens };
    const paths: [string, PackShape, Request][] = [
      ["small path", small, req],
      ["large alone", large, req],
      [
        `escalation (K = ${K}, r = ${opts.retention})`,
        large,
        { ...req, prune: { layer: K, retention: opts.retention } },
      ],
    ];
    for (const [name, pack, r] of paths) {
      const now = requestBytes(pack, r);
      const resident = residentBytes(pack, r);
      const steps = decodeStepsBytes(pack, r, opts.decodeSteps);
      rows.push([
        String(tiles),
        `${name}: ${pack.name}`,
        mb(now.vision),
        mb(now.prefill),
        mb(now.decode),
        `${mb(now.total)} (${ms(now.total)} ms)`,
        `${mb(steps.decode)} / ${mb(steps.total)} (${ms(steps.total)} ms)`,
        `${mb(resident.total)} (${ms(resident.total)} ms)`,
      ]);
    }
  }
  const md = [
    "# Host↔device bytes per request on a GPU, by path (computed, not measured)",
    "",
    `- Command: \`npx tsx bench/device-bytes.ts ${process.argv.slice(2).join(" ")}\``,
    `- ${opts.text} text tokens, ${opts.tokens} tokens generated; float32 graph inputs and outputs (every weight type keeps them float32); MB = 10⁶ bytes, both directions together; time at an assumed ${opts.linkGbs} GB/s`,
    "- Today: onnxruntime-node's CUDA provider returns every output to the host, so each call moves its inputs and outputs, the KV cache included; resident: the KV cache, hidden states and visual embeddings stay on the device and only pixels, ids, logits and SGP's sums cross",
    `- K-step decode (K = ${opts.decodeSteps}): a pack exported with --decode-steps ${opts.decodeSteps} decodes K tokens per run, so the KV cache crosses down and up once per K tokens (vision and prefill as today; the last run's tokens past max_tokens are counted)`,
    "",
    markdownTable(
      [
        "tiles",
        "path",
        "vision MB",
        "prefill MB",
        "decode MB",
        "today, total MB",
        `K-step decode: decode / total MB`,
        "resident, total MB",
      ],
      rows,
    ),
    "",
  ].join("\n");
  console.log(md);
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, md);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
