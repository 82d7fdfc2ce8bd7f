/**
 * The engine at real model sizes, in one run, side by side: a small and a large pack (e.g. random-weight
 * InternVL3-1B / -8B packs from model-export/make_real_size.py and stitch_export) loaded together, then for the
 * same one-tile photo, repeated in rotating order with a fresh image each time (nothing cached):
 *   - the small path (runSmall: vision, prefill, decoding, SEE), the large model alone (unpruned) and the
 *     escalation (the large model pruned at its first split layer K by the small model's ranking, r = 35%),
 *     end to end and broken down by graph (vision, prefill, decode steps) with the rest as host work;
 *   - SGL's cost against the large model alone over the exit rate, and the break-even exit rate;
 *   - the large prefill pruned at r = 9/35/64% against the FLOPs limit L / (K + (L − K)·r);
 *   - load time, RSS, the weights' memory per graph; a 3-tile prompt; the exports' peak RSS and errors.
 *
 *   npx tsx bench/real-size.ts --small DIR --large DIR [--threads 2] [--repeats 3] [--max-tokens 8]
 *     [--small-export-log FILE --large-export-log FILE] [--out bench/results/real-size.md]
 *
 * A benchmark command, not a test. With random weights the answers mean nothing; times are the point.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { Command } from "commander";
import { median } from "simple-statistics";
import { DecoderRun, type PruneAt } from "../gpu-worker/engine/decoder-run.js";
import { loadLargeEngine, loadSmallEngine, type PreparedPrompt, preparePrompt } from "../gpu-worker/engine/engine.js";
import type { LoadedModel } from "../gpu-worker/engine/loaded-model.js";
import { Meter } from "../gpu-worker/engine/onnx-sessions.js";
import { packMemory } from "../gpu-worker/engine/pack-memory.js";
import { topVisualTokens } from "../gpu-worker/engine/rank-visual-tokens.js";
import { askAboutImage } from "../shared/index.js";
import { decimal, integer } from "../tools/cli-options.js";
import { photoAt, timed } from "./engine-timing.js";
import { describeMachine } from "./machine.js";
import {
  type ExportFigures,
  exportFigures,
  type PathRun,
  type RealSizeResults,
  renderRealSize,
} from "./real-size-report.js";
import { type ProfileTotals, SessionProfile } from "./session-profile.js";
import { breakEvenExitRate, costCurve, flopsLimitForPrompt } from "./sgl-cost.js";
import { speedupLimit } from "./stats.js";

const list = (value: string) => value.split(",").map(decimal(0, 1));
const opts = new Command()
  .requiredOption("--small <dir>", "the small pack")
  .requiredOption("--large <dir>", "the large pack")
  .option("--threads <n>", "intra-op threads per session", integer(1, 256), 2)
  .option("--repeats <n>", "runs of each measurement (the median is reported)", integer(1, 100), 3)
  .option("--max-tokens <n>", "tokens generated per answer", integer(1, 512), 8)
  .option("--retentions <list>", "pruned prefill sweep: shares of visual tokens kept", list, [0.09, 0.35, 0.64])
  .option("--escalation-retention <r>", "the escalation's share of visual tokens kept", decimal(0, 1), 0.35)
  .option(
    "--exit-rates <list>",
    "exit rates of the cost curve",
    list,
    [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
  )
  .option("--photo <file>", "the image", "test/fixtures/photos/astronaut.jpg")
  .option("--small-export-log <file>", "GNU time -v output of the small pack's export")
  .option("--large-export-log <file>", "GNU time -v output of the large pack's export")
  .option("--no-multi-tile", "skip the 3-tile prompt")
  .option("--out <file>", "Markdown results (JSON beside it)", "bench/results/real-size.md")
  .parse()
  .opts();

const question = "What is in this picture?";
const messages = askAboutImage(question);
const log = (line: string) => console.error(`[real-size] ${line}`);
const rss = () => process.memoryUsage().rss;
const peakRss = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0) * 1024;

/** The photo resized (fit fill) to width × height, decoded as the worker does; `tag` makes the cache key unique. */
const photo = (width: number, height: number, tag: string) => photoAt(opts.photo, width, height, tag);

function tileOf(model: LoadedModel): { width: number; height: number; tokens: number } {
  const recipe = model.info.image;
  if (recipe.processor !== "tiles") throw new Error(`${model.info.name}: processor ${recipe.processor}, not tiles`);
  return { ...recipe.tile, tokens: recipe.tokens_per_tile };
}

/** One path's runs: end-to-end times and each run's profile; the reported profile is the per-field median. */
function pathRun(name: string, e2e: number[], profiles: ProfileTotals[], tokens: number, kept?: number): PathRun {
  const m = (f: (p: ProfileTotals) => number) => median(profiles.map(f));
  const modelMs = (p: ProfileTotals) => p.visionMs + p.embedMs + p.prefillMs + p.decodeMs;
  return {
    name,
    e2eMs: median(e2e),
    runsMs: e2e,
    visionMs: m((p) => p.visionMs),
    embedMs: m((p) => p.embedMs),
    prefillMs: m((p) => p.prefillMs),
    decodeMs: m((p) => p.decodeMs),
    decodeSteps: m((p) => p.decodeSteps),
    hostMs: median(e2e.map((t, i) => t - modelMs(profiles[i] as ProfileTotals))),
    tokens,
    ...(kept !== undefined && { keptVisual: kept }),
  };
}

async function prefillMs(model: LoadedModel, prompt: PreparedPrompt, prune?: PruneAt): Promise<number> {
  const run = new DecoderRun(model, new Meter(), prompt.span, prompt.positions);
  const [, t] = await timed(() => run.prefill(prompt.embeds, prune));
  run.release();
  return t;
}

/** Each config `repeats` times in rotating order; the median per config. */
async function prefillSweep(model: LoadedModel, prompt: PreparedPrompt, configs: (PruneAt | undefined)[]) {
  const times: number[][] = configs.map(() => []);
  for (let r = 0; r < opts.repeats; r++) {
    for (let k = 0; k < configs.length; k++) {
      const c = (k + r) % configs.length;
      (times[c] as number[]).push(await prefillMs(model, prompt, configs[c]));
    }
  }
  return times.map((t) => ({ ms: median(t), runsMs: t }));
}

function exportOf(log: string | undefined, model: LoadedModel): ExportFigures {
  return exportFigures(log ? readFileSync(log, "utf8") : undefined, model.pack.manifest);
}

async function main() {
  const machine = describeMachine();
  const rssStart = rss();
  const [small, smallLoadMs] = await timed(() =>
    loadSmallEngine({ packDir: opts.small, partnerPackDir: opts.large, threads: opts.threads }),
  );
  const rssSmall = rss();
  log(`small loaded in ${smallLoadMs.toFixed(0)} ms`);
  const [large, largeLoadMs] = await timed(() =>
    loadLargeEngine({ packDir: opts.large, partnerPackDir: opts.small, threads: opts.threads }),
  );
  const rssLarge = rss();
  log(`large loaded in ${largeLoadMs.toFixed(0)} ms`);
  const sm = small.model;
  const lm = large.model;
  const profile = new SessionProfile();
  profile.instrument(sm);
  profile.instrument(lm);
  const L = lm.dims.layers;
  const K = lm.info.splitLayers[0] as number;
  const tile = tileOf(lm);
  const maxTokens = opts.maxTokens;

  // The three paths, fresh image each run, rotating order; the escalation uses the latest small ranking (repeat 0
  // runs the small path first, so there always is one).
  const runs = { small: [] as number[], large: [] as number[], escalation: [] as number[] };
  const profiles = { small: [] as ProfileTotals[], large: [] as ProfileTotals[], escalation: [] as ProfileTotals[] };
  let tokens = { small: 0, large: 0, escalation: 0 };
  let kept = 0;
  let ranking: number[] = [];
  for (let r = 0; r < opts.repeats; r++) {
    const order = ["small", "large", "escalation"] as const;
    for (let k = 0; k < order.length; k++) {
      const path = order[(k + r) % order.length] as (typeof order)[number];
      const image = await photo(tile.width, tile.height, `${path}-${r}`);
      profile.take();
      if (path === "small") {
        const [res, t] = await timed(() => small.runSmall({ image, messages, maxTokens }));
        ranking = res.ranking;
        tokens.small = res.metering.completion_tokens;
        runs.small.push(t);
      } else {
        const mode = path === "large" ? ("large" as const) : ("sgp" as const);
        const req = { image, messages, maxTokens, mode, retention: opts.escalationRetention, pruneLayer: K, ranking };
        const [res, t] = await timed(() => large.runLarge(req));
        tokens = { ...tokens, [path]: res.metering.completion_tokens };
        if (path === "escalation") kept = res.metering.visual_tokens_kept;
        runs[path].push(t);
      }
      profiles[path].push(profile.take());
      log(`${path} repeat ${r}: ${runs[path].at(-1)?.toFixed(0)} ms`);
    }
  }
  const paths = {
    small: pathRun("small path (runSmall: vision, prefill, decoding, SEE)", runs.small, profiles.small, tokens.small),
    large: pathRun("large alone (unpruned)", runs.large, profiles.large, tokens.large),
    escalation: pathRun(
      `escalation (large pruned at K = ${K}, r = ${opts.escalationRetention})`,
      runs.escalation,
      profiles.escalation,
      tokens.escalation,
      kept,
    ),
  };
  const times = { smallMs: paths.small.e2eMs, escalationMs: paths.escalation.e2eMs, largeMs: paths.large.e2eMs };

  // The pruned prefill sweep on the same prompt, keep = the top r of the small model's ranking.
  const image = await photo(tile.width, tile.height, "sweep");
  const prompt = await preparePrompt(lm, { image, messages }, new Meter());
  const configs = [
    undefined,
    ...opts.retentions.map((r: number) => ({ layer: K, choose: () => topVisualTokens(ranking, r) })),
  ];
  const sweep = await prefillSweep(lm, prompt, configs);
  const base = sweep[0] as { ms: number };
  const visual = prompt.span.length;
  const pruned = opts.retentions.map((r: number, j: number) => {
    const s = sweep[j + 1] as { ms: number; runsMs: number[] };
    const speedUp = base.ms / s.ms;
    const limit = speedupLimit(L, K, r);
    return {
      retention: r,
      keptVisual: topVisualTokens(ranking, r).length,
      ...s,
      speedUp,
      limit,
      ofLimit: speedUp / limit,
      limitForPrompt: flopsLimitForPrompt(L, K, r, visual, prompt.promptLength),
    };
  });

  let multiTile: RealSizeResults["multiTile"];
  if (opts.multiTile) {
    const wide = await photo(2 * tile.width, tile.height, "three-tiles");
    profile.take();
    const sp = await preparePrompt(sm, { image: wide, messages }, new Meter());
    const smallVision = profile.take().visionMs;
    const lp = await preparePrompt(lm, { image: wide, messages }, new Meter());
    const largeVision = profile.take().visionMs;
    const [s] = await prefillSweep(sm, sp, [undefined]);
    const [l] = await prefillSweep(lm, lp, [undefined]);
    multiTile = {
      tiles: lp.span.length / tile.tokens,
      promptTokens: lp.promptLength,
      smallVisionMs: smallVision,
      largeVisionMs: largeVision,
      smallPrefillMs: (s as { ms: number }).ms,
      largePrefillMs: (l as { ms: number }).ms,
    };
  }

  const results: RealSizeResults = {
    command: `npx tsx bench/real-size.ts ${process.argv.slice(2).join(" ")}`,
    machine,
    date: new Date().toISOString(),
    threads: opts.threads,
    repeats: opts.repeats,
    maxTokens,
    question,
    photo: opts.photo,
    promptTokens: prompt.promptLength,
    visualTokens: visual,
    small: {
      name: sm.info.name,
      version: sm.info.version,
      dtype: sm.pack.manifest.weights.dtype,
      layers: sm.dims.layers,
      hidden: sm.dims.hidden,
    },
    large: {
      name: lm.info.name,
      version: lm.info.version,
      dtype: lm.pack.manifest.weights.dtype,
      layers: L,
      hidden: lm.dims.hidden,
      pruneLayer: K,
    },
    load: { smallMs: smallLoadMs, largeMs: largeLoadMs, rssStart, rssSmall, rssLarge },
    memory: {
      small: await packMemory(opts.small, sm.pack.manifest, "cpu"),
      large: await packMemory(opts.large, lm.pack.manifest, "cpu"),
    },
    paths,
    cost: {
      curve: costCurve(times, opts.exitRates),
      breakEven: breakEvenExitRate(times),
      at70: costCurve(times, [0.7])[0]?.ratio ?? Number.NaN,
    },
    prefill: { unprunedMs: base.ms, unprunedRunsMs: (sweep[0] as { runsMs: number[] }).runsMs, pruned },
    multiTile,
    exports: { small: exportOf(opts.smallExportLog, sm), large: exportOf(opts.largeExportLog, lm) },
    peakRss: peakRss(),
  };
  const md = renderRealSize(results);
  console.log(md);
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, md);
  writeFileSync(opts.out.replace(/\.md$/, ".json"), `${JSON.stringify(results, null, 2)}\n`);
  log(`written to ${opts.out} and its .json`);
}

await main();
