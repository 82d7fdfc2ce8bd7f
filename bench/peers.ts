/**
 * `npm run bench:peers`: Stitch side by side with llama.cpp on the same checkpoints, the same request and the same
 * machine, in one run (issue 29). See bench/README.md for what is measured and how.
 *
 *   npm run bench:peers -- --prepare --sizes 3b,7b --types int8,int4       # the comparison (a quiet machine)
 *   npm run bench:peers -- --prepare --sizes tiny-small,tiny-large --repeats 2 --out /tmp/peers   # the pipeline
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { Command, InvalidArgumentError } from "commander";
import { median } from "simple-statistics";
import type { PruneAt } from "../gpu-worker/engine/decoder-run.js";
import type { LoadedModel } from "../gpu-worker/engine/loaded-model.js";
import { askAboutImage } from "../shared/index.js";
import { decimal, integer } from "../tools/cli-options.js";
import { describeMachine } from "./machine.js";
import { artefacts, SIZES, type Size, WEIGHT_TYPES, type WeightType } from "./peers-artefacts.js";
import { requestMs } from "./peers-cost.js";
import { httpRuns } from "./peers-http.js";
import { runDecoderBench, runMtmd } from "./peers-llama.js";
import { images, prepare, roles } from "./peers-prepare.js";
import { type PeersResult, writeReport } from "./peers-report.js";
import {
  loadModel,
  loadPair,
  peakRssBytes,
  releaseModel,
  releasePair,
  type StitchPair,
  sgp,
  stitchRequest,
} from "./peers-stitch.js";
import { compare, type Run, type Summary, summarise } from "./peers-summary.js";

const listOf =
  <T extends string>(allowed: readonly T[]) =>
  (value: string): T[] => {
    const items = value.split(",");
    const bad = items.filter((i) => !allowed.includes(i as T));
    if (bad.length || items.length === 0) throw new InvalidArgumentError(`expected some of ${allowed.join(",")}`);
    return items as T[];
  };

const imageSizes = (value: string) =>
  value.split(",").map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s);
    if (!m) throw new InvalidArgumentError(`expected WxH[,WxH…], got ${s}`);
    return { width: Number(m[1]), height: Number(m[2]) };
  });

const exitRates = (value: string) => value.split(",").map(decimal(0, 1));

const program = new Command()
  .name("bench:peers")
  .option("--sizes <list>", "checkpoints: the last is the large model, the one before it guides it", listOf(SIZES), [
    "3b",
    "7b",
  ] as Size[])
  .option("--types <list>", "Stitch weight types (llama.cpp: F16, Q8_0, Q4_K_M)", listOf(WEIGHT_TYPES), [
    "int8",
    "int4",
  ] as WeightType[])
  .option("--prepare", "make the missing checkpoints, GGUFs, packs (resumable) and build llama.cpp first")
  .option("--keep-checkpoints", "keep the checkpoints after converting and exporting them")
  .option(
    "--export-cases <n>",
    "verify each Stitch export on the first N conformance cases (default: all)",
    integer(1, 100),
  )
  .option(
    "--apart",
    "one side resident at a time (small, large, llama.cpp), for a request too large for both sides in memory together",
  )
  .option("--llama-only", "llama.cpp's side only (no Stitch packs: e.g. while the exporter cannot export the size)")
  .option("--repeats <n>", "rounds per configuration (medians)", integer(1, 50), 3)
  .option("--warmup <n>", "uncounted rounds first", integer(0, 10), 1)
  .option("--steps <n>", "decode steps after the prefill (tokens generated = steps + 1)", integer(1, 256), 15)
  .option("--threads <n>", "threads (default: the cores)", integer(1, 256), cpus().length)
  .option("--images <list>", "request images (the photo resized, fit fill)", imageSizes, imageSizes("448x448,896x672"))
  .option("--photo <file>", "the photograph", "test/fixtures/photos/astronaut.jpg")
  .option("--question <text>", "the question", "What is in this picture?")
  .option("--prune-layer <k>", "the large pack's split layer, where SGP prunes", integer(1, 100), 2)
  .option("--retention <r>", "SGP's retention", decimal(0.01, 1), 0.35)
  .option("--exit-rates <list>", "SGL exit rates", exitRates, exitRates("0,0.5,0.7,0.9"))
  .option("--http-rounds <n>", "requests through the HTTP function (first type and image; 0: none)", integer(0, 20), 1)
  .option("--out <dir>", "results folder", "bench/results")
  .parse();

const o = program.opts<{
  sizes: Size[];
  types: WeightType[];
  prepare?: boolean;
  keepCheckpoints?: boolean;
  llamaOnly?: boolean;
  apart?: boolean;
  exportCases?: number;
  repeats: number;
  warmup: number;
  steps: number;
  threads: number;
  images: { width: number; height: number }[];
  photo: string;
  question: string;
  pruneLayer: number;
  retention: number;
  exitRates: number[];
  httpRounds: number;
  out: string;
}>();

const log = (line: string) => console.error(`[peers] ${line}`);
const a = artefacts();
const messages = askAboutImage(o.question);
const { large, small } = roles(o.sizes);

function buildLlama(): string {
  const out = execFileSync("bench/peers-build-llama-cpp.sh", {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return out.trim().split("\n").at(-1) ?? "";
}

type Config = [name: string, run: () => Promise<Run>];
type RequestImage = { path: string; width: number; height: number };

/** Uncounted warm-up rounds (page cache, lazy initialisation), then `repeats` rounds over `configs` in rotating order. */
async function rounds(configs: Config[], label: string): Promise<Record<string, Run[]>> {
  const runs: Record<string, Run[]> = Object.fromEntries(configs.map(([name]) => [name, []]));
  for (let r = -o.warmup; r < o.repeats; r++) {
    for (let k = 0; k < configs.length; k++) {
      const [name, go] = configs[(k + r + o.warmup) % configs.length] as Config;
      const run = await go();
      if (r >= 0) (runs[name] as Run[]).push(run);
      log(
        `${label} ${name} ${r < 0 ? "warm-up" : `round ${r}`}: ${run.e2eMs.toFixed(0)} ms (vision ${run.visionMs.toFixed(0)}, prefill ${run.prefillMs.toFixed(0)}, decode ${run.decodeMsPerToken.toFixed(1)}/token)`,
      );
    }
  }
  return runs;
}

/** llama.cpp's request: its own timings of the image, the prompt's prefill and the decode. */
function llamaConfig(type: WeightType, image: RequestImage, visualTokens: number | undefined) {
  const request = {
    bin: a.llama.bin,
    model: a.gguf(large, type),
    mmproj: a.mmproj(large),
    image: image.path,
    question: o.question,
    steps: o.steps,
    threads: o.threads,
    ...(visualTokens && { imageMaxTokens: visualTokens }),
  };
  let answer = "";
  const config: Config = [
    "llama",
    async () => {
      const req = await runMtmd(request);
      const dec = await runDecoderBench(request, req.promptTokens);
      answer = req.answer;
      return {
        visionMs: req.visionMs,
        prefillMs: dec.prefillMs,
        decodeMsPerToken: dec.decodeMsPerToken,
        overheadMs: 0,
        e2eMs: requestMs({ ...dec, visionMs: req.visionMs, overheadMs: 0 }, o.steps),
        promptTokens: req.promptTokens,
        ...(req.peakRssKiB && { peakRssBytes: req.peakRssKiB * 1024 }),
      };
    },
  ];
  return { config, answer: () => answer };
}

/** One Stitch request timed on the engine. */
async function stitchRun(model: LoadedModel, image: RequestImage, prune?: PruneAt): Promise<Run> {
  const t = await stitchRequest(model, image, messages, o.steps, prune);
  const steps = t.stepMs.reduce((x, y) => x + y, 0);
  return {
    visionMs: t.visionMs,
    prefillMs: t.prefillMs,
    decodeMsPerToken: steps / t.stepMs.length,
    overheadMs: t.totalMs - t.visionMs - t.prefillMs - steps,
    e2eMs: t.totalMs,
    promptTokens: t.promptTokens,
  };
}

interface Measured {
  runs: Record<string, Run[]>;
  visualTokens?: number;
  answer: string;
  loads: StitchPair["loads"];
}

/** Every side resident at once (both Stitch models loaded for the whole type), the configurations interleaved. */
async function measureResident(
  type: WeightType,
  pair: StitchPair | undefined,
  image: RequestImage,
  label: string,
): Promise<Measured> {
  // The small model's ranking of this image (deterministic), for the pruned large runs; also its token count.
  const first = pair?.small ? await stitchRequest(pair.small, image, messages, 1) : undefined;
  // The pair check guarantees one visual grid, so the small model's count is the large one's.
  const visualTokens =
    first?.visualTokens ?? (pair ? (await stitchRequest(pair.large, image, messages, 0)).visualTokens : undefined);
  const llama = llamaConfig(type, image, visualTokens);
  const configs: Config[] = [llama.config];
  if (pair) {
    configs.push(["large", () => stitchRun(pair.large, image)]);
    if (pair.small && first) {
      const prune = sgp(pair.large, first.received, o.retention);
      const smallModel = pair.small;
      configs.push(["pruned", () => stitchRun(pair.large, image, prune)]);
      configs.push(["small", () => stitchRun(smallModel, image)]);
    }
  }
  const runs = await rounds(configs, label);
  return { runs, visualTokens, answer: llama.answer(), loads: pair?.loads ?? [] };
}

/**
 * `--apart`: one side resident at a time, for a request too large for both in memory: the small model (its ranking,
 * its rounds), then the large model (alone and pruned, interleaved), then llama.cpp, each unloaded before the next.
 */
async function measureApart(
  type: WeightType,
  dirs: { large: string; small?: string },
  image: RequestImage,
  label: string,
): Promise<Measured> {
  const runs: Record<string, Run[]> = {};
  const loads: StitchPair["loads"] = [];
  let first: Awaited<ReturnType<typeof stitchRequest>> | undefined;
  if (dirs.small) {
    const small = await loadModel("small", dirs.small, dirs.large, o.threads);
    loads.push(small.load);
    logLoads(label, [small.load]);
    first = await stitchRequest(small.model, image, messages, 1);
    Object.assign(runs, await rounds([["small", () => stitchRun(small.model, image)]], label));
    await releaseModel(small.model);
  }
  const largeModel = await loadModel("large", dirs.large, dirs.small, o.threads);
  loads.push(largeModel.load);
  logLoads(label, [largeModel.load]);
  const visualTokens = first?.visualTokens ?? (await stitchRequest(largeModel.model, image, messages, 0)).visualTokens;
  const configs: Config[] = [["large", () => stitchRun(largeModel.model, image)]];
  if (first) {
    const prune = sgp(largeModel.model, first.received, o.retention);
    configs.push(["pruned", () => stitchRun(largeModel.model, image, prune)]);
  }
  Object.assign(runs, await rounds(configs, label));
  await releaseModel(largeModel.model);
  const llama = llamaConfig(type, image, visualTokens);
  Object.assign(runs, await rounds([llama.config], label));
  return { runs, visualTokens, answer: llama.answer(), loads };
}

function logLoads(label: string, loads: StitchPair["loads"]): void {
  for (const l of loads)
    log(`${label} ${l.role}: loaded in ${l.ms.toFixed(0)} ms, +${(l.rssBytes / 2 ** 30).toFixed(2)} GiB`);
}

/** One weight type: every image's configurations, with Stitch's packs loaded once (or per side with --apart). */
async function measureType(type: WeightType): Promise<PeersResult["cells"]> {
  const dirs = { large: a.pack(large, "large", type), ...(small && { small: a.pack(small, "small", type) }) };
  const pair = o.llamaOnly || o.apart ? undefined : await loadPair(dirs, o.threads);
  if (pair) logLoads(type, pair.loads);
  const cells: PeersResult["cells"] = [];
  for (const size of o.images) {
    const image = { path: a.image(`${size.width}x${size.height}`), ...size };
    const label = `${type} ${size.width}x${size.height}`;
    const { runs, visualTokens, answer, loads } =
      o.apart && !o.llamaOnly
        ? await measureApart(type, dirs, image, label)
        : await measureResident(type, pair, image, label);
    const s = (name: string) => (runs[name]?.length ? summarise(runs[name]) : undefined);
    const llama = s("llama");
    if (!llama) throw new Error("no llama.cpp run");
    const stitchSides = { large: s("large"), pruned: s("pruned"), small: s("small") };
    cells.push({
      type,
      image: `${size.width}x${size.height}`,
      visualTokens,
      llamaAnswer: answer,
      stitchLoads: loads,
      ...compare(llama, Object.fromEntries(Object.entries(stitchSides).filter(([, v]) => v)), o.exitRates, o.steps),
    });
  }
  if (pair) await releasePair(pair);
  return cells;
}

/** The large path once more through the HTTP function (before the engines load: the function loads its own). */
async function measureHttp() {
  const type = o.types[0];
  const size = o.images[0];
  if (o.llamaOnly || o.httpRounds === 0 || !small || !type || !size) return undefined;
  const image = `${size.width}x${size.height}`;
  const runs = await httpRuns({
    small: a.pack(small, "small", type),
    large: a.pack(large, "large", type),
    threads: o.threads,
    image: a.image(image),
    question: o.question,
    maxTokens: o.steps + 1,
    rounds: o.httpRounds + o.warmup,
  });
  log(`HTTP: ${runs.map((r) => `${r.ms.toFixed(0)} ms (${r.completionTokens} tokens)`).join(", ")}`);
  return { type, image, runs: runs.slice(o.warmup) };
}

/** Serving overhead: the HTTP request's time beyond the engine's own for the same tokens (medians). */
function serving(http: NonNullable<Awaited<ReturnType<typeof measureHttp>>>, engine: Summary) {
  const ms = median(http.runs.map((r) => r.ms));
  const tokens = median(http.runs.map((r) => r.completionTokens));
  const engineMs = requestMs(engine, Math.max(0, tokens - 1));
  return { ...http, medianMs: ms, completionTokens: tokens, engineMs, overheadMs: ms - engineMs };
}

async function main(): Promise<void> {
  const started = new Date().toISOString();
  const machine = describeMachine();
  const buildDir = buildLlama();
  if (o.prepare) {
    prepare(a, {
      sizes: o.sizes,
      types: o.types,
      pruneLayer: o.pruneLayer,
      threads: o.threads,
      keepCheckpoints: Boolean(o.keepCheckpoints),
      skipPacks: Boolean(o.llamaOnly),
      ...(o.exportCases && { exportCases: o.exportCases }),
    });
  }
  await images(a, o.photo, o.images);
  for (const t of o.types) {
    for (const path of [a.gguf(large, t), a.mmproj(large)]) {
      if (!existsSync(path)) throw new Error(`${path} is missing: run with --prepare`);
    }
  }
  const http = await measureHttp();
  const cells: PeersResult["cells"] = [];
  for (const type of o.types) cells.push(...(await measureType(type)));
  const engine = cells.find((c) => c.type === http?.type && c.image === http?.image)?.large;
  await writeReport(o.out, {
    command: `npm run bench:peers -- ${process.argv.slice(2).join(" ")}`,
    started,
    machine,
    llamaBuild: buildDir,
    sizes: { large, ...(small && { small }) },
    request: {
      question: o.question,
      steps: o.steps,
      threads: o.threads,
      repeats: o.repeats,
      warmup: o.warmup,
      photo: o.photo,
      retention: o.retention,
      pruneLayer: o.pruneLayer,
      apart: Boolean(o.apart),
    },
    stitchSide: !o.llamaOnly,
    stitchPeakRssBytes: peakRssBytes(),
    cells,
    ...(http && engine && { http: serving(http, engine) }),
  });
}

await main();
