/**
 * Evaluates one serving configuration on held-out scenes through the same
 * orchestrator the small function runs (in-process escalation, no HTTP), and
 * prints one JSON object: accuracy overall and per tier, escalation rate,
 * latency, and compute per request, overall and by path.
 *
 *   npm run eval -- --seed 5000 --count 1000 --mode sgl [--retention 0.35] [--prune-layer 1] [--threshold 0.8]
 */
import { join } from "node:path";
import { Command } from "commander";
import { encodePng, generateItem, TIERS } from "../scene-generator/index.js";
import { type AnswerResponse, AnswerRequestSchema, MODES, type Mode } from "../shared/index.js";
import { answerQuestion } from "../gpu-worker/answer-question.js";
import { loadLargeEngine, loadSmallEngine, resolveServingDefaults } from "../gpu-worker/engine/engine.js";
import { inProcessEscalation } from "../gpu-worker/escalate-to-large.js";
import { summarise, type EvalRecord } from "./summarise-eval.js";

const opts = new Command()
  .requiredOption("--seed <n>", "scene seed of the held-out items", Number)
  .requiredOption("--count <n>", "number of items", Number)
  .option("--mode <mode>", `one of ${MODES.join(", ")}`, "sgl")
  .option("--retention <r>", "visual tokens the large model keeps from layer K", Number)
  .option("--prune-layer <k>", "layer K at which the large model is pruned", Number)
  .option("--threshold <t>", "SEE exit threshold", Number)
  .option("--packs <dir>", "model packs directory", "model-packs")
  .option("--threads <n>", "ONNX intra-op threads", Number)
  .parse()
  .opts<{ seed: number; count: number; mode: string; retention?: number; pruneLayer?: number; threshold?: number; packs: string; threads?: number }>();

if (!MODES.includes(opts.mode as Mode)) throw new Error(`--mode must be one of ${MODES.join(", ")}`);
const smallDir = join(opts.packs, "stitch-scenes-small");
const largeDir = join(opts.packs, "stitch-scenes-large");
const small0 = await loadSmallEngine({ packDir: smallDir, partnerPackDir: largeDir, threads: opts.threads });
const large = await loadLargeEngine({ packDir: largeDir, partnerPackDir: smallDir, threads: opts.threads });
const defaults = await resolveServingDefaults(opts.packs, { small: small0.pack.version, large: large.pack.version });
// Reload the small engine with the pair's calibrated exit policy (the first load only read the pack).
const small = await loadSmallEngine({ packDir: smallDir, threads: opts.threads, exit: defaults.exit });
const deps = {
  small,
  largePack: large.pack,
  escalation: inProcessEscalation(large, { timeoutMs: 600_000 }),
  defaults: { pruneLayer: defaults.prune.layer, retention: defaults.prune.retention },
  limits: { maxBytes: 4 << 20, maxPixels: 4096 * 4096 },
};

const records: EvalRecord[] = [];
for (let i = 0; i < opts.count; i++) {
  const item = generateItem(opts.seed, i);
  const qa = item.questions[0] as (typeof item.questions)[number];
  const request = AnswerRequestSchema.parse({
    request_id: `eval-${item.id}`,
    image: { base64: Buffer.from(encodePng(item.rgb, item.side)).toString("base64"), media_type: "image/png" },
    question: qa.question,
    mode: opts.mode,
    max_tokens: 4,
    retention: opts.retention,
    prune_layer: opts.pruneLayer,
    exit_threshold: opts.threshold,
  });
  const start = performance.now();
  const res: AnswerResponse = await answerQuestion(request, deps);
  records.push({
    tier: qa.tier,
    correct: res.answer === qa.answer,
    path: res.path,
    latencyMs: performance.now() - start,
    flops: (res.metering.small?.flops ?? 0) + (res.metering.large?.flops ?? 0),
    acceleratorMs: (res.metering.small?.accelerator_ms ?? 0) + (res.metering.large?.accelerator_ms ?? 0),
  });
}
await deps.escalation.close();

const config = {
  seed: opts.seed,
  count: opts.count,
  mode: opts.mode,
  retention: opts.retention ?? (opts.mode === "small" || opts.mode === "large" ? null : defaults.prune.retention),
  prune_layer: opts.pruneLayer ?? defaults.prune.layer,
  threshold: opts.threshold ?? defaults.exit.threshold,
  packs: { small: small.pack.version, large: large.pack.version },
};
console.log(JSON.stringify({ config, ...summarise(records, TIERS) }, null, 2));
