/**
 * `npm run bench:quality -- [--seed 5000] [--count 1000] [--quick]`: the paper's
 * findings on the embedded pair, through the engine (no HTTP), on a fresh
 * held-out set. Writes bench/results/quality.{json,md} and the SVG figures.
 */

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command } from "commander";
import { loadLargeEngine, loadSmallEngine, readModelPack } from "../gpu-worker/engine/engine.js";
import { fixedVisualTokens } from "../gpu-worker/engine/image-processor/fixed/fixed-processor.js";
import { resolveServingDefaults } from "../gpu-worker/engine/serving-defaults.js";
import { PACKS_DIR } from "../gpu-worker/engine/testing.js";
import { integer } from "../tools/cli-options.js";
import { describeMachine } from "./machine.js";
import { accuracyVsCompute, type Defaults, exitCurves, rankingAgreement, speedup } from "./quality-analyses.js";
import { type QualityResults, renderFigures, renderMarkdown } from "./quality-report.js";
import { configKey, PRUNED_METHODS, type PrunedConfig, runItems } from "./quality-run.js";
import { measureSpeed } from "./quality-speed.js";

const RETENTIONS = [0.09, 0.2, 0.35, 0.64];
const RESULTS = "bench/results";

const program = new Command()
  .name("bench:quality")
  .option("--seed <n>", "scene-generator seed of the held-out set (training used 1 and 2)", integer(0), 5000)
  .option("--count <n>", "items (default 1000; 150 with --quick)", integer(10))
  .option("--quick", "150 items and a shorter timing pass (under 2 minutes)")
  .option("--threads <n>", "onnxruntime intra-op threads per session", integer(1, 64), 1)
  .option("--max-tokens <n>", "answer length limit", integer(1, 64), 4)
  .option("--out <dir>", "results folder", RESULTS)
  .parse();

const opts = program.opts<{
  seed: number;
  count?: number;
  quick?: boolean;
  threads: number;
  maxTokens: number;
  out: string;
}>();
const quick = Boolean(opts.quick);
const { seed, threads } = opts;
const count = opts.count ?? (quick ? 150 : 1000);
const timingItems = Math.min(count, quick ? 30 : 200);
const timingRepeats = quick ? 2 : 3;

const started = performance.now();
const machine = describeMachine();
const smallDir = join(PACKS_DIR, "stitch-scenes-small");
const largeDir = join(PACKS_DIR, "stitch-scenes-large");
const [smallPack, largePack] = await Promise.all([readModelPack(smallDir), readModelPack(largeDir)]);
const served = await resolveServingDefaults(PACKS_DIR, {
  small: smallPack.manifest.version,
  large: largePack.manifest.version,
});
// A vision cache of 1 byte holds nothing: every request pays its own vision encoder, as a first request would.
const engine = { threads, visionCacheBytes: 1 };
// Every exit score on the same runs, for Figure 4's comparison of rules (so the small runs include the re-read).
const small = await loadSmallEngine({
  ...engine,
  packDir: smallDir,
  partnerPackDir: largeDir,
  exit: served.exit,
  scoreEveryRule: true,
});
const large = await loadLargeEngine({ ...engine, packDir: largeDir, partnerPackDir: smallDir });
const defaults: Defaults = {
  exitThreshold: served.exit.threshold,
  exitRule: served.exit.rule,
  pruneLayer: served.prune.layer,
  pruneRetention: served.prune.retention,
};

const layers = large.pack.splitLayers;
const configs: PrunedConfig[] = layers.flatMap((layer) =>
  PRUNED_METHODS.flatMap((method) => RETENTIONS.map((retention) => ({ method, layer, retention }))),
);
const fallback: PrunedConfig = { method: "sgp", layer: defaults.pruneLayer, retention: defaults.pruneRetention };
const runConfigs = configs.some((c) => configKey(c) === configKey(fallback)) ? configs : [...configs, fallback];

console.error(
  `bench:quality: ${count} items × ${runConfigs.length + 2} engine runs (seed ${seed}, ${machine.cores} cores)`,
);
let lastReport = 0;
const records = await runItems(small, large, {
  seed,
  count,
  maxTokens: opts.maxTokens,
  configs: runConfigs,
  onProgress: (done) => {
    if (done === count || performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      console.error(`  ${done}/${count} items, ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }
  },
});

console.error(`  side-by-side timing on ${timingItems} items × ${timingRepeats} repeats`);
const timings = await measureSpeed(large, records.slice(0, timingItems), {
  seed,
  maxTokens: opts.maxTokens,
  points: layers.flatMap((layer) => RETENTIONS.map((retention) => ({ layer, retention }))),
  repeats: timingRepeats,
});

const results: QualityResults = {
  command: `npm run bench:quality --${quick ? " --quick" : ""} --seed ${seed} --count ${count}`,
  machine,
  packs: {
    small: `${small.pack.name}@${small.pack.version}`,
    large: `${large.pack.name}@${large.pack.version}`,
    layers: large.pack.layers,
    visualTokens: fixedVisualTokens(large.pack.image),
  },
  seed,
  count,
  quick,
  defaults,
  tookSeconds: 0,
  timing: { items: timingItems, repeats: timingRepeats },
  accuracy: accuracyVsCompute(records, configs, defaults),
  agreement: rankingAgreement(records, RETENTIONS, seed),
  exit: exitCurves(records, defaults, seed),
  speedup: speedup(records, configs, large.pack.layers, timings),
};
results.tookSeconds = (performance.now() - started) / 1000;

await mkdir(opts.out, { recursive: true });
await writeFile(join(opts.out, "quality.json"), `${JSON.stringify(results, null, 2)}\n`);
await writeFile(join(opts.out, "quality.md"), renderMarkdown(results));
for (const [name, svg] of Object.entries(renderFigures(results))) await writeFile(join(opts.out, name), svg);
console.error(`bench:quality: wrote ${opts.out}/quality.{json,md} and figures in ${results.tookSeconds.toFixed(0)} s`);
