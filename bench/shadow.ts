/**
 * `npm run bench:shadow -- [--items 8000] [--target 0.05] [--shadow-rate 0.02] [--quick]`: shadow escalation on the
 * embedded pair through the real local stack. A stream of scene questions whose tier mix shifts half-way (mostly
 * exists/read, then mostly spatial/count), the escalation's answer known for every item offline (engines, before any
 * request). Two passes side by side, each on a fresh stack: the threshold calibrated offline on the first mix and
 * kept fixed, and the same threshold recalibrated from shadow samples by the edge (SHADOW_TARGET). Writes
 * bench/results/shadow.{md,json} and shadow-disagreement.svg; every verdict is computed from the measurements.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command } from "commander";
import { PACKS_DIR } from "../gpu-worker/engine/testing.js";
import { certifiedPoint, exitCurve, NEVER_EXIT } from "../shared/shadow/exit-curve.js";
import { integer } from "../tools/cli-options.js";
import { describeMachine } from "./machine.js";
import { calibrationError, overTime, phaseStats, shadowShare } from "./shadow-analysis.js";
import { groundTruth, parseMix } from "./shadow-offline.js";
import {
  renderShadowExitFigure,
  renderShadowFigure,
  renderShadowMarkdown,
  type ShadowResults,
} from "./shadow-report.js";
import { runStream } from "./shadow-run.js";

const fraction = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new Error(`not a fraction in (0, 1]: ${v}`);
  return n;
};

const program = new Command()
  .name("bench:shadow")
  .option("--items <n>", "stream length, half per mix (default 8000; 1200 with --quick)", integer(20))
  .option("--quick", "a short stream (a smoke run, not the figures)")
  .option("--seed <n>", "scene-generator seed of the stream (the calibration set uses seed + 1)", integer(0), 3100)
  .option("--calibration-items <n>", "first-mix items the fixed threshold is calibrated on", integer(20), 600)
  .option("--mix-before <spec>", "tier mix of the first half", "exists=0.45,read=0.45,spatial=0.05,count=0.05")
  .option("--mix-after <spec>", "tier mix of the second half", "exists=0.05,read=0.05,spatial=0.6,count=0.3")
  .option("--target <x>", "the promise: most early exits that may disagree", fraction, 0.05)
  .option("--shadow-rate <x>", "share of stitch-sgl exit decisions sampled (early exits shadowed)", fraction, 0.02)
  .option("--min-samples <n>", "samples before the edge leaves the offline threshold", integer(1), 60)
  .option("--window <n>", "newest samples the curve is computed from", integer(1), 400)
  .option("--step <n>", "a fixed-sequence candidate every n exits", integer(1), 10)
  .option("--connections <n>", "requests in flight", integer(1, 64), 4)
  .option("--out <dir>", "results folder", "bench/results")
  .parse();
const opts = program.opts<{
  items?: number;
  quick?: boolean;
  seed: number;
  calibrationItems: number;
  mixBefore: string;
  mixAfter: string;
  target: number;
  shadowRate: number;
  minSamples: number;
  window: number;
  step: number;
  connections: number;
  out: string;
}>();
const items = opts.items ?? (opts.quick ? 1200 : 8000);
const half = Math.floor(items / 2);
const started = performance.now();
const machine = describeMachine();
const log = (line: string) => {
  if (line.startsWith("[bench]") || /error|crash/i.test(line)) console.log(line);
};

console.log(`bench:shadow: ground truth for ${items} + ${opts.calibrationItems} items (engines, no HTTP)`);
const before = parseMix(opts.mixBefore);
const truth = await groundTruth(
  PACKS_DIR,
  [
    { seed: opts.seed, from: 0, count: half, mix: before },
    { seed: opts.seed, from: half, count: items - half, mix: parseMix(opts.mixAfter) },
    { seed: opts.seed + 1, from: 0, count: opts.calibrationItems, mix: before },
  ],
  (n) => console.log(`[bench] truth ${n}`),
);
const stream = truth.items.slice(0, items);
const calibrationSet = truth.items.slice(items).map((i) => ({ score: i.decision, agree: i.agree }));
// The fixed threshold: the same fixed-sequence rule, on the first mix only, then never revisited.
const fixedThreshold = Math.min(
  1,
  certifiedPoint(exitCurve(calibrationSet, opts.target, { step: opts.step }), opts.target)?.threshold ?? NEVER_EXIT,
);
console.log(`bench:shadow: fixed threshold ${fixedThreshold} (first mix, target ${opts.target})`);

console.log("bench:shadow: pass 1, fixed threshold");
const fixed = await runStream(stream, { offlineThreshold: fixedThreshold, connections: opts.connections }, log);
console.log("bench:shadow: pass 2, recalibrated from shadow samples");
const shadow = {
  target: opts.target,
  rate: opts.shadowRate,
  minSamples: opts.minSamples,
  window: opts.window,
  step: opts.step,
};
const recalibrated = await runStream(
  stream,
  { offlineThreshold: fixedThreshold, shadow, connections: opts.connections },
  log,
);

const windowSize = Math.max(50, Math.round(items / 40));
const passes = { fixed, recalibrated };
const results: ShadowResults = {
  command: `npm run bench:shadow -- ${process.argv.slice(2).join(" ")}`.trim(),
  machine,
  settings: { items, half, ...opts, fixedThreshold, windowSize, served: truth.served },
  passes: Object.fromEntries(
    Object.entries(passes).map(([name, run]) => [
      name,
      {
        seconds: run.seconds,
        before: phaseStats(run.answered.slice(0, half), stream.slice(0, half)),
        after: phaseStats(run.answered.slice(half), stream.slice(half)),
        overTime: overTime(run.answered, stream, windowSize),
        shadow: shadowShare(run),
        report: run.report,
        thresholds: [...new Set(run.answered.map((a) => `${a.threshold}@${a.calibration}`))].length,
      },
    ]),
  ) as ShadowResults["passes"],
  calibrationError: calibrationError(recalibrated.answered, stream),
  minutes: (performance.now() - started) / 60_000,
};
await mkdir(opts.out, { recursive: true });
await writeFile(join(opts.out, "shadow.json"), `${JSON.stringify(results, null, 2)}\n`);
await writeFile(join(opts.out, "shadow.md"), renderShadowMarkdown(results));
await writeFile(join(opts.out, "shadow-disagreement.svg"), renderShadowFigure(results));
await writeFile(join(opts.out, "shadow-exit-rate.svg"), renderShadowExitFigure(results));
console.log(renderShadowMarkdown(results));
