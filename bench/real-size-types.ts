/**
 * The same model in several weight types, side by side in one run: packs exported from one checkpoint with
 * different `--dtype` (e.g. a random-weight InternVL3-2B from model-export/make_real_size.py). All are loaded at
 * once; then the same one-tile request's vision, prefill and decode steps are timed in rotating order across the
 * packs, `repeats` times each, and the medians compared with the first pack's.
 *
 *   npx tsx bench/real-size-types.ts --packs DIR,DIR,... [--threads 2] [--repeats 5] [--steps 8]
 *     [--photo test/fixtures/photos/astronaut.jpg] [--out bench/results/real-size-types.md]
 *
 * A benchmark command, not a test. With random weights the answers mean nothing; times and memory are the point.
 */
import { execSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { median } from "simple-statistics";
import { loadLargeEngine, preparePrompt } from "../gpu-worker/engine/engine.js";
import type { LoadedModel } from "../gpu-worker/engine/loaded-model.js";
import { Meter } from "../gpu-worker/engine/onnx-sessions.js";
import { packMemory } from "../gpu-worker/engine/pack-memory.js";
import type { DecodedImage } from "../gpu-worker/engine/types.js";
import { askAboutImage } from "../shared/index.js";
import { photoAt, timed, timeRequest } from "./engine-timing.js";

const { values: args } = parseArgs({
  options: {
    packs: { type: "string" },
    threads: { type: "string", default: "2" },
    repeats: { type: "string", default: "5" },
    steps: { type: "string", default: "8" },
    photo: { type: "string", default: "test/fixtures/photos/astronaut.jpg" },
    out: { type: "string", default: "bench/results/real-size-types.md" },
  },
});
if (!args.packs) {
  console.error("usage: npx tsx bench/real-size-types.ts --packs DIR,DIR,... [--threads 2] [--repeats 5] [--steps 8]");
  process.exit(2);
}
const dirs = (args.packs as string).split(",");
const threads = Number(args.threads);
const repeats = Number(args.repeats);
const steps = Number(args.steps);
const messages = askAboutImage("What is in this picture?");

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
const ms = (t: number) => (t >= 100 ? t.toFixed(0) : t.toFixed(1));
const rss = () => process.memoryUsage().rss;
const log = (line: string) => console.error(`[real-size-types] ${line}`);

function tile(model: LoadedModel, tag: string): Promise<DecodedImage> {
  const recipe = model.info.image;
  if (recipe.processor !== "tiles") throw new Error(`${model.info.name}: processor ${recipe.processor}, not tiles`);
  return photoAt(args.photo as string, recipe.tile.width, recipe.tile.height, tag);
}

interface Sample {
  vision: number[];
  prefill: number[];
  step: number[];
  logits?: Float32Array;
}

/** One request's pieces, timed: vision (uncached), prefill over the whole prompt, `steps` greedy decode steps. */
async function once(model: LoadedModel, round: number, sample: Sample): Promise<void> {
  const image = await tile(model, `round-${round}-${Math.random()}`);
  const t = await timeRequest(model, image, messages, steps);
  sample.logits ??= t.firstLogits;
  sample.step.push(...t.stepMs);
  sample.vision.push(t.visionMs);
  sample.prefill.push(t.prefillMs);
  log(`${model.info.name} round ${round}: vision ${ms(t.visionMs)} ms, prefill ${ms(t.prefillMs)} ms`);
}

function machine(): string {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "unknown";
  const flags = /flags\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.split(" ") ?? [];
  const simd = ["avx2", "avx512f", "avx512_vnni", "amx_int8"].filter((f) => flags.includes(f)).join(", ");
  const mem = Number(/MemTotal:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) * 1024;
  return `nproc ${execSync("nproc").toString().trim()}, CPU ${cpu} (${simd}), RAM ${gib(mem)}, Node ${process.version}, ${new Date().toISOString()}`;
}

async function main() {
  const loaded: { model: LoadedModel; loadMs: number; rssBytes: number; weightBytes: number; fileBytes: number }[] = [];
  for (const dir of dirs) {
    const before = rss();
    const [engine, loadMs] = await timed(() => loadLargeEngine({ packDir: dir, threads }));
    const memory = await packMemory(dir, engine.model.pack.manifest, "cpu");
    const fileBytes = memory.graphs.reduce((a, g) => a + g.diskBytes, 0);
    loaded.push({ model: engine.model, loadMs, rssBytes: rss() - before, weightBytes: memory.bytes, fileBytes });
    log(`${dir}: loaded in ${ms(loadMs)} ms, RSS +${gib(rss() - before)}`);
  }
  const samples: Sample[] = loaded.map(() => ({ vision: [], prefill: [], step: [] }));
  for (let r = 0; r < repeats; r++) {
    for (let k = 0; k < loaded.length; k++) {
      const i = (k + r) % loaded.length;
      await once((loaded[i] as (typeof loaded)[number]).model, r, samples[i] as Sample);
    }
  }

  const lines: string[] = [];
  const out = (line = "") => {
    lines.push(line);
    console.log(line);
  };
  const first = loaded[0]?.model as LoadedModel;
  const base = samples[0] as Sample;
  const promptTokens = (await preparePrompt(first, { image: await tile(first, "count"), messages }, new Meter()))
    .promptLength;
  out("# One model in several weight types, side by side (random weights, CPU)");
  out();
  out("**Random weights: times and memory only; the logit differences say how far each type moves this random");
  out(`model, not what it does to answers. onnxruntime-node's CPU execution provider, ${threads} intra-op threads.**`);
  out();
  out(`- Command: \`npx tsx bench/real-size-types.ts ${process.argv.slice(2).join(" ")}\``);
  out(`- Machine: ${machine()}`);
  out(
    `- Model: ${first.info.name}, ${first.dims.layers} layers, hidden ${first.dims.hidden}, vocabulary ${first.dims.vocab}, segments split at ${first.info.splitLayers.join(",")}`,
  );
  out(
    `- Request: ${args.photo} resized to one 448-px tile (256 visual tokens), prompt ${promptTokens} tokens, then ${steps} greedy decode steps; medians of ${repeats} rounds, the packs in rotating order`,
  );
  out();
  out(
    "| weights | files | weights on the CPU (estimate) | RSS after load | load (sessions + warm-up) | vision per tile | prefill | speed-up | decode step | speed-up | max abs Δ first logits vs first pack |",
  );
  out("|---|---|---|---|---|---|---|---|---|---|---|");
  loaded.forEach((l, i) => {
    const s = samples[i] as Sample;
    const prefill = median(s.prefill);
    const step = median(s.step);
    const delta =
      s.logits && base.logits ? s.logits.reduce((m, v, j) => Math.max(m, Math.abs(v - (base.logits?.[j] ?? 0))), 0) : 0;
    const scale = base.logits ? base.logits.reduce((m, v) => Math.max(m, Math.abs(v)), 0) : 1;
    out(
      `| ${l.model.pack.manifest.weights.dtype} | ${gib(l.fileBytes)} | ${gib(l.weightBytes)} | ${gib(l.rssBytes)} | ${ms(l.loadMs)} ms | ${ms(median(s.vision))} ms | ${ms(prefill)} ms | ${(median(base.prefill) / prefill).toFixed(2)}× | ${ms(step)} ms | ${(median(base.step) / step).toFixed(2)}× | ${delta.toPrecision(3)} (of ${scale.toPrecision(3)}) |`,
    );
  });
  out();
  out("Runs (ms):");
  out();
  loaded.forEach((l, i) => {
    const s = samples[i] as Sample;
    out(
      `- ${l.model.pack.manifest.weights.dtype}: vision ${s.vision.map(ms).join(", ")}; prefill ${s.prefill.map(ms).join(", ")}`,
    );
  });
  mkdirSync(dirname(args.out as string), { recursive: true });
  writeFileSync(args.out as string, `${lines.join("\n")}\n`);
  log(`written to ${args.out}`);
}

await main();
