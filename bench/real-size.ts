/**
 * The engine at real model sizes: loads a small and a large pack (e.g. random-weight InternVL3-1B / -2B packs
 * from model-export/make_real_size.py) and measures, in one run, load time and RSS per engine, vision time per
 * tile, the small model's answer end to end, and the large model's prefill unpruned and pruned at its first split
 * layer K (keep = the top of the small model's own ranking of a real small run), each repeated and the median
 * taken, next to the FLOPs limit L / (K + (L − K)·r) and the engine's own FLOPs estimate (metering) ratio.
 *
 *   npx tsx bench/real-size.ts --small DIR --large DIR [--threads 2] [--repeats 3] [--max-tokens 8]
 *     [--retentions 0.09,0.35,0.64] [--photo test/fixtures/photos/astronaut.jpg] [--no-multi-tile]
 *     [--out bench/results/real-size.md]
 *
 * A benchmark command, not a test. With random weights the answers mean nothing; times are the point.
 */
import { execSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { median } from "simple-statistics";
import { DecoderRun, type PruneAt } from "../gpu-worker/engine/decoder-run.js";
import { loadLargeEngine, loadSmallEngine, type PreparedPrompt, preparePrompt } from "../gpu-worker/engine/engine.js";
import { generate } from "../gpu-worker/engine/generate.js";
import type { LoadedModel } from "../gpu-worker/engine/loaded-model.js";
import { Meter } from "../gpu-worker/engine/onnx-sessions.js";
import { topVisualTokens } from "../gpu-worker/engine/rank-visual-tokens.js";
import { askAboutImage } from "../shared/index.js";
import { photoAt, timed } from "./engine-timing.js";

const { values: args } = parseArgs({
  options: {
    small: { type: "string" },
    large: { type: "string" },
    threads: { type: "string", default: "2" },
    repeats: { type: "string", default: "3" },
    "max-tokens": { type: "string", default: "8" },
    retentions: { type: "string", default: "0.09,0.35,0.64" },
    photo: { type: "string", default: "test/fixtures/photos/astronaut.jpg" },
    "no-multi-tile": { type: "boolean", default: false },
    out: { type: "string", default: "bench/results/real-size.md" },
  },
});
if (!args.small || !args.large) {
  console.error("usage: npx tsx bench/real-size.ts --small DIR --large DIR [--threads 2] [--repeats 3] ...");
  process.exit(2);
}
const threads = Number(args.threads);
const repeats = Number(args.repeats);
const maxTokens = Number(args["max-tokens"]);
const retentions = (args.retentions as string).split(",").map(Number);
const question = "What is in this picture?";
const messages = askAboutImage(question);

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
const rss = () => process.memoryUsage().rss;
const peakRss = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0) * 1024;
const ms = (t: number) => (t >= 100 ? t.toFixed(0) : t.toFixed(1));
const log = (line: string) => console.error(`[real-size] ${line}`);

/** The photo resized (fit fill) to width × height, decoded as the worker does; `tag` makes the cache key unique. */
const photo = (width: number, height: number, tag: string) => photoAt(args.photo as string, width, height, tag);

/** Vision time per tile: the median of `repeats` uncached runs (a fresh cache key each time). */
async function visionMs(model: LoadedModel, width: number, height: number): Promise<{ ms: number; tiles: number }> {
  const times: number[] = [];
  let tiles = 0;
  for (let r = 0; r < repeats; r++) {
    const image = await photo(width, height, `vision-${r}-${Math.random()}`);
    const [{ embeds }, t] = await timed(() => model.vision.embed(image, new Meter()));
    tiles = embeds.length / model.dims.hidden / tokensPerTile(model);
    times.push(t);
  }
  return { ms: median(times), tiles };
}

/** Visual tokens of one tile (the InternVL "tiles" processor; other processors have no fixed tile). */
function tokensPerTile(model: LoadedModel): number {
  const recipe = model.info.image;
  if (recipe.processor !== "tiles") throw new Error(`${model.info.name}: processor ${recipe.processor}, not tiles`);
  return recipe.tokens_per_tile;
}

function tileSize(model: LoadedModel): { width: number; height: number } {
  const recipe = model.info.image;
  if (recipe.processor !== "tiles") throw new Error(`${model.info.name}: processor ${recipe.processor}, not tiles`);
  return recipe.tile;
}

interface Prefill {
  ms: number;
  flops: number;
  times: number[];
}

async function prefillOnce(model: LoadedModel, prompt: PreparedPrompt, prune?: PruneAt) {
  const meter = new Meter();
  const run = new DecoderRun(model, meter, prompt.span);
  const [, t] = await timed(() => run.prefill(prompt.embeds, prune));
  run.release();
  return { t, flops: meter.flops };
}

/** Unpruned and every pruned config, `repeats` times each in rotating order; the median per config. */
async function prefillSweep(
  model: LoadedModel,
  prompt: PreparedPrompt,
  configs: (PruneAt | undefined)[],
): Promise<Prefill[]> {
  const results: Prefill[] = configs.map(() => ({ ms: 0, flops: 0, times: [] }));
  for (let r = 0; r < repeats; r++) {
    for (let k = 0; k < configs.length; k++) {
      const c = (k + r) % configs.length;
      const { t, flops } = await prefillOnce(model, prompt, configs[c]);
      const res = results[c] as Prefill;
      res.times.push(t);
      res.flops = flops;
      log(`prefill config ${c} repeat ${r}: ${ms(t)} ms`);
    }
  }
  for (const res of results) res.ms = median(res.times);
  return results;
}

function machine(): string {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "unknown";
  const mem = Number(/MemTotal:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) * 1024;
  const nproc = execSync("nproc").toString().trim();
  return `nproc ${nproc}, CPU ${cpu}, RAM ${gib(mem)}, Node ${process.version}, ${new Date().toISOString()}`;
}

async function main() {
  const lines: string[] = [];
  const out = (line = "") => {
    lines.push(line);
    console.log(line);
  };
  const rssStart = rss();

  log(`loading small ${args.small}`);
  const [small, smallLoadMs] = await timed(() =>
    loadSmallEngine({ packDir: args.small as string, partnerPackDir: args.large, threads }),
  );
  const rssSmall = rss();
  log(`small loaded in ${ms(smallLoadMs)} ms, RSS ${gib(rssSmall)}`);
  log(`loading large ${args.large}`);
  const [large, largeLoadMs] = await timed(() =>
    loadLargeEngine({ packDir: args.large as string, partnerPackDir: args.small, threads }),
  );
  const rssLarge = rss();
  log(`large loaded in ${ms(largeLoadMs)} ms, RSS ${gib(rssLarge)}`);
  const sm = small.model;
  const lm = large.model;
  const L = lm.dims.layers;
  const K = lm.info.splitLayers[0] as number;

  // One tile: the photo resized to the tile (448 × 448 fill).
  const { width: tw, height: th } = tileSize(lm);
  const smallVision = await visionMs(sm, tw, th);
  const largeVision = await visionMs(lm, tw, th);
  log(`vision per tile: small ${ms(smallVision.ms)} ms, large ${ms(largeVision.ms)} ms`);

  // The small model's answer end to end (engine request: vision uncached, prefill, decoding, SEE).
  const image = await photo(tw, th, "one-tile");
  const [smallResult, smallE2eMs] = await timed(() => small.runSmall({ image, messages, maxTokens }));
  // The same greedy run through generate() for the token ids (vision now cached).
  const smallPrompt = await preparePrompt(sm, { image, messages }, new Meter());
  const gen = await generate({
    run: new DecoderRun(sm, new Meter(), smallPrompt.span),
    embeds: smallPrompt.embeds,
    promptLength: smallPrompt.promptLength,
    maxTokens,
    stopIds: sm.prompt.stopIds,
    decode: sm.prompt.decode,
  });
  log(`small answer ${JSON.stringify(smallResult.answer)} ids ${JSON.stringify(gen.tokens)} in ${ms(smallE2eMs)} ms`);
  const [smallPrefill] = await prefillSweep(sm, smallPrompt, [undefined]);

  const ranking = smallResult.ranking;
  // The escalated answer end to end: the large model pruned by the small model's ranking at K, r = 35%.
  const [largeResult, largeE2eMs] = await timed(() =>
    large.runLarge({ image, messages, maxTokens, mode: "sgp", retention: 0.35, pruneLayer: K, ranking }),
  );
  log(`large answer ${JSON.stringify(largeResult.answer)} in ${ms(largeE2eMs)} ms`);
  const largePrompt = await preparePrompt(lm, { image, messages }, new Meter());
  const configs: (PruneAt | undefined)[] = [
    undefined,
    ...retentions.map((r) => {
      const keep = topVisualTokens(ranking, r);
      return { layer: K, choose: () => keep };
    }),
  ];
  const sweep = await prefillSweep(lm, largePrompt, configs);
  const base = sweep[0] as Prefill;

  // Multi-tile: the photo at 2 tiles wide (2 tiles + thumbnail).
  let multi: { tiles: number; tokens: number; vision: number; small: Prefill; large: Prefill } | undefined;
  if (!args["no-multi-tile"]) {
    const wide = await photo(2 * tw, th, "two-tiles");
    const v = await visionMs(lm, 2 * tw, th);
    const sp = await preparePrompt(sm, { image: wide, messages }, new Meter());
    const lp = await preparePrompt(lm, { image: wide, messages }, new Meter());
    const [s] = await prefillSweep(sm, sp, [undefined]);
    const [l] = await prefillSweep(lm, lp, [undefined]);
    multi = { tiles: v.tiles, tokens: lp.promptLength, vision: v.ms, small: s as Prefill, large: l as Prefill };
  }

  out("# Stitch engine at real InternVL3 sizes (random weights, CPU)");
  out();
  out("**Random weights: these numbers say nothing about accuracy, only time and memory. CPU (onnxruntime CPU");
  out(`execution provider, ${threads} intra-op threads per session), not GPU.**`);
  out();
  out(`- Command: \`npx tsx bench/real-size.ts ${process.argv.slice(2).join(" ")}\``);
  out(`- Machine: ${machine()}`);
  out(`- Small pack: ${sm.info.name} (${sm.info.version}), ${sm.dims.layers} layers, hidden ${sm.dims.hidden}`);
  out(
    `- Large pack: ${lm.info.name} (${lm.info.version}), ${L} layers, hidden ${lm.dims.hidden}, split layers ${lm.info.splitLayers.join(",")}`,
  );
  out(
    `- Image: ${args.photo} resized to ${tw}×${th} (fit fill), 1 tile = ${tokensPerTile(lm)} visual tokens; question "${question}"; prompt ${largePrompt.promptLength} tokens`,
  );
  out(`- Each time is the median of ${repeats} runs (prefill configs in rotating order); max_tokens ${maxTokens}`);
  out();
  out("| measure | value |");
  out("|---|---|");
  out(`| RSS before loading | ${gib(rssStart)} |`);
  out(`| small engine load (sessions + warm-up) | ${ms(smallLoadMs)} ms |`);
  out(`| RSS after small load | ${gib(rssSmall)} |`);
  out(`| large engine load (sessions + warm-up) | ${ms(largeLoadMs)} ms |`);
  out(`| RSS after large load | ${gib(rssLarge)} |`);
  out(`| vision per tile, small pack | ${ms(smallVision.ms)} ms |`);
  out(`| vision per tile, large pack | ${ms(largeVision.ms)} ms |`);
  out(`| small prefill (${smallPrompt.promptLength} tokens) | ${ms(smallPrefill?.ms ?? 0)} ms |`);
  out(
    `| small answer end to end (runSmall: vision + prefill + ${smallResult.metering.completion_tokens} tokens + SEE) | ${ms(smallE2eMs)} ms |`,
  );
  out(`| small answer token ids | \`${JSON.stringify(gen.tokens)}\` (${gen.finishReason}) |`);
  out(`| small answer text | \`${JSON.stringify(smallResult.answer)}\` |`);
  out(`| large prefill unpruned (${largePrompt.promptLength} tokens) | ${ms(base.ms)} ms |`);
  out(
    `| large answer end to end (runLarge, sgp at K = ${K}, r = 35%: vision + pruned prefill + ${largeResult.metering.completion_tokens} tokens) | ${ms(largeE2eMs)} ms, ${largeResult.metering.visual_tokens_kept} of ${largeResult.metering.visual_tokens_total} visual tokens kept |`,
  );
  out(`| large answer text | \`${JSON.stringify(largeResult.answer)}\` (${largeResult.finishReason}) |`);
  out();
  out(`Large prefill pruned at K = ${K} of L = ${L} (keep = top r of the small model's ranking):`);
  out();
  out(
    "| r | kept visual | prefill ms (median) | runs ms | speed-up | FLOPs limit L/(K+(L−K)·r) | engine FLOPs ratio |",
  );
  out("|---|---|---|---|---|---|---|");
  out(`| 1 (unpruned) | ${largePrompt.span.length} | ${ms(base.ms)} | ${base.times.map(ms).join(", ")} | 1 | 1 | 1 |`);
  retentions.forEach((r, j) => {
    const p = sweep[j + 1] as Prefill;
    const kept = topVisualTokens(ranking, r).length;
    const limit = L / (K + (L - K) * r);
    out(
      `| ${r} | ${kept} | ${ms(p.ms)} | ${p.times.map(ms).join(", ")} | ${(base.ms / p.ms).toFixed(2)} | ${limit.toFixed(2)} | ${(base.flops / p.flops).toFixed(2)} |`,
    );
  });
  if (multi) {
    out();
    out(
      `Multi-tile: the photo at ${2 * tw}×${th} (fit fill) → ${multi.tiles} tiles (2 + thumbnail), prompt ${multi.tokens} tokens:`,
    );
    out();
    out("| measure | total ms | per tile ms |");
    out("|---|---|---|");
    out(`| vision (large pack) | ${ms(multi.vision)} | ${ms(multi.vision / multi.tiles)} |`);
    out(`| small prefill | ${ms(multi.small.ms)} | ${ms(multi.small.ms / multi.tiles)} |`);
    out(`| large prefill unpruned | ${ms(multi.large.ms)} | ${ms(multi.large.ms / multi.tiles)} |`);
  }
  out();
  out(`Peak RSS of the benchmark process (VmHWM): ${gib(peakRss())}`);
  mkdirSync(dirname(args.out as string), { recursive: true });
  writeFileSync(args.out as string, `${lines.join("\n")}\n`);
  log(`written to ${args.out}`);
}

await main();
