/**
 * Picks SEE's exit threshold for the loaded pair from labelled scenes, for a
 * target: the cheapest threshold whose combined accuracy stays within
 * `--max-drop` points of large-only accuracy, or the most accurate threshold
 * that escalates at most `--max-escalation` of requests. Prints the curve and writes
 * the threshold (with the prune defaults) to <packs>/serving-defaults.json.
 * With it, the offline calibrated score: per item, whether the escalation the
 * exit would have made (sgp at K and r with the small ranking, what a shadow
 * runs) gives the small model's answer (shared/shadow/normalise-answer.ts);
 * its isotonic fit on the decision score, fitted on the even-numbered items,
 * and its expected calibration error on the odd-numbered ones (not fitted on).
 *
 *   npm run calibrate -- --seed 9000 --count 600 --max-drop 1
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command } from "commander";
import {
  COMBINE_RULES,
  type CombineRule,
  decisionScore,
  requireConsistency,
} from "../gpu-worker/engine/decide-exit.js";
import { loadLargeEngine, loadSmallEngine } from "../gpu-worker/engine/engine.js";
import { SERVING_DEFAULTS_FILE, type ServingDefaults } from "../gpu-worker/engine/serving-defaults.js";
import { generateItem } from "../scene-generator/index.js";
import { askAboutImage } from "../shared/index.js";
import { expectedCalibrationError, fitIsotonic, predictIsotonic } from "../shared/shadow/isotonic.js";
import { sameAnswer } from "../shared/shadow/normalise-answer.js";
import { decimal, integer } from "./cli-options.js";

const opts = new Command()
  .option("--packs <dir>", "model packs directory", "model-packs")
  .option("--seed <n>", "scene seed (keep it apart from the benchmark seeds)", integer(0), 9000)
  .option("--count <n>", "labelled items", integer(1), 600)
  .option("--max-drop <points>", "largest accuracy loss against large-only, in points", decimal(0, 100))
  .option("--max-escalation <fraction>", "largest share of requests sent to the large model", decimal(0, 1))
  .option("--best", "the threshold of highest combined accuracy (ties: the cheaper one)")
  .option("--rule <rule>", `combination rule: ${COMBINE_RULES.join(", ")}`, "average")
  .option("--reread-retention <r>", "visual tokens kept for the consistency re-read", decimal(0, 1), 0.05)
  .option("--prune-layer <k>", "layer K of the escalated large model", integer(1, 1000), 1)
  .option("--retention <r>", "visual tokens the escalated large model keeps", decimal(0, 1), 0.35)
  .option("--dry-run", "print the curve without writing the file")
  .parse()
  .opts<{
    packs: string;
    seed: number;
    count: number;
    maxDrop?: number;
    maxEscalation?: number;
    best?: boolean;
    rule: string;
    rereadRetention: number;
    pruneLayer: number;
    retention: number;
    dryRun?: boolean;
  }>();

const targets = [opts.maxDrop !== undefined, opts.maxEscalation !== undefined, Boolean(opts.best)];
if (targets.filter(Boolean).length !== 1)
  throw new Error("give exactly one target: --max-drop, --max-escalation or --best");
if (!COMBINE_RULES.includes(opts.rule as CombineRule)) throw new Error(`unknown rule ${opts.rule}`);
const rule = opts.rule as CombineRule;

const smallDir = join(opts.packs, "stitch-scenes-small");
const largeDir = join(opts.packs, "stitch-scenes-large");
const small = await loadSmallEngine({
  packDir: smallDir,
  partnerPackDir: largeDir,
  exit: { threshold: 1, retention: opts.rereadRetention, rule },
  scoreEveryRule: true,
});
const large = await loadLargeEngine({ packDir: largeDir, partnerPackDir: smallDir });

interface Row {
  confidence: number;
  consistency: number;
  small: boolean;
  escalated: boolean;
  large: boolean;
  /** The escalation would have answered the same as the small model: what a shadow of this decision measures. */
  agree: boolean;
}
const rows: Row[] = [];
for (let i = 0; i < opts.count; i++) {
  const item = generateItem(opts.seed, i);
  const qa = item.questions[0] as { question: string; answer: string };
  const image = { hash: item.id, width: item.side, height: item.side, rgb: item.rgb };
  const s = await small.runSmall({ image, messages: askAboutImage(qa.question), maxTokens: 4 });
  const base = { image, messages: askAboutImage(qa.question), maxTokens: 4, pruneLayer: opts.pruneLayer };
  const sgp = await large.runLarge({ ...base, mode: "sgp", retention: opts.retention, ranking: s.ranking });
  const full = await large.runLarge({ ...base, mode: "large", retention: 1 });
  rows.push({
    confidence: s.exit.confidence,
    consistency: requireConsistency(s.exit),
    small: s.answer === qa.answer,
    escalated: sgp.answer === qa.answer,
    large: full.answer === qa.answer,
    agree: sameAnswer(s.answer, sgp.answer),
  });
}

const largeAccuracy = mean(rows.map((r) => (r.large ? 1 : 0)));
const scores = rows.map((r) => decisionScore(r.confidence, r.consistency, rule));
const thresholds = [...new Set([0, ...scores, 1.000001])].sort((a, b) => a - b);
const curve = thresholds.map((t) => {
  const exits = scores.map((s) => s >= t);
  const accuracy = mean(rows.map((r, i) => ((exits[i] ? r.small : r.escalated) ? 1 : 0)));
  return { threshold: t, accuracy, escalation: mean(exits.map((e) => (e ? 0 : 1))) };
});
// --max-drop: the lowest threshold that keeps the accuracy (most early exits =
// cheapest). --max-escalation and --best: the most accurate threshold within the
// escalation budget (the lowest of equals); --best has the whole curve as budget.
const ok = curve.filter((p) => {
  if (opts.maxDrop !== undefined) return p.accuracy >= largeAccuracy - opts.maxDrop / 100;
  return opts.best || p.escalation <= (opts.maxEscalation as number);
});
const bestInBudget = Math.max(...ok.map((p) => p.accuracy));
const chosen =
  (opts.maxDrop !== undefined ? ok[0] : ok.find((p) => p.accuracy >= bestInBudget)) ??
  (curve[curve.length - 1] as (typeof curve)[number]);

console.log(
  `large-only accuracy ${(largeAccuracy * 100).toFixed(1)}%, small-only ${(mean(rows.map((r) => (r.small ? 1 : 0))) * 100).toFixed(1)}%`,
);
console.log("threshold  accuracy  escalation");
const step = Math.max(1, Math.floor(curve.length / 25));
for (const p of curve.filter((_, i) => i % step === 0 || curve[i] === chosen)) {
  const mark = p === chosen ? "  <- chosen" : "";
  console.log(
    `${p.threshold.toFixed(4).padStart(9)}  ${(p.accuracy * 100).toFixed(1).padStart(7)}%  ${(p.escalation * 100).toFixed(1).padStart(8)}%${mark}`,
  );
}

// The calibrated score under the chosen rule: fitted on the even items, its calibration error on the odd ones
// (over every scored answer, and over the early exits at the chosen threshold alone).
const labelled = rows.map((r, i) => ({ score: scores[i] as number, agree: r.agree }));
const steps = fitIsotonic(labelled.filter((_, i) => i % 2 === 0));
const heldOut = labelled.filter((_, i) => i % 2 === 1);
const heldExits = heldOut.filter((l) => l.score >= chosen.threshold);
const ece = (items: typeof labelled) =>
  items.length === 0
    ? null
    : expectedCalibrationError(
        items.map((l) => predictIsotonic(steps, l.score) ?? 0),
        items.map((l) => l.agree),
      );
const [eceAll, eceExits] = [ece(heldOut), ece(heldExits)];
console.log(
  `agreement of the escalation with the small answer ${(mean(labelled.map((l) => (l.agree ? 1 : 0))) * 100).toFixed(1)}%; ` +
    `isotonic fit (${steps.length} steps, even items) ECE on the ${heldOut.length} odd items ${eceAll?.toFixed(4)}, ` +
    `on their ${heldExits.length} early exits ${eceExits?.toFixed(4) ?? "n/a"}`,
);

const defaults: ServingDefaults = {
  pair: { small: small.pack.version, large: large.pack.version },
  exit: { threshold: Math.min(1, round(chosen.threshold)), retention: opts.rereadRetention, rule },
  prune: { layer: opts.pruneLayer, retention: opts.retention },
  calibration: {
    seed: opts.seed,
    count: opts.count,
    target: opts.best
      ? { best_accuracy: true }
      : opts.maxDrop !== undefined
        ? { max_drop_points: opts.maxDrop }
        : { max_escalation: opts.maxEscalation },
    large_accuracy: round(largeAccuracy),
    accuracy: round(chosen.accuracy),
    escalation: round(chosen.escalation),
  },
  agreement: {
    calibration: `offline:${opts.seed}/${opts.count}`,
    steps: steps.map((step) => ({ from: step.from, p: round(step.p) })),
  },
};
if (!opts.dryRun) {
  await writeFile(join(opts.packs, SERVING_DEFAULTS_FILE), `${JSON.stringify(defaults, null, 2)}\n`);
  console.log(`wrote ${join(opts.packs, SERVING_DEFAULTS_FILE)}`);
}

function mean(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}
function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
