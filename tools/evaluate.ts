/**
 * Evaluates one serving configuration on held-out scenes through the same
 * orchestrator the small function runs (in-process escalation, no HTTP), and
 * prints one JSON object: accuracy overall and per tier, escalation rate,
 * latency, and compute per request, overall and by path.
 *
 *   npm run eval -- --seed 5000 --count 1000 --mode sgl [--retention 0.35] [--prune-layer 1] [--threshold 0.8]
 */
import { Command } from "commander";
import { answerQuestion } from "../gpu-worker/answer-question.js";
import { loadConfig } from "../gpu-worker/config.js";
import { createLogger } from "../gpu-worker/http/logger.js";
import { loadServices } from "../gpu-worker/load-engines.js";
import { encodePng, generateItem, TIERS } from "../scene-generator/index.js";
import { AnswerRequestSchema, type AnswerResponse, askAboutImage, MODES, type Mode } from "../shared/index.js";
import { decimal, integer } from "./cli-options.js";
import { type EvalRecord, summarise } from "./summarise-eval.js";

const opts = new Command()
  .requiredOption("--seed <n>", "scene seed of the held-out items", integer(0))
  .requiredOption("--count <n>", "number of items", integer(1))
  .option("--mode <mode>", `one of ${MODES.join(", ")}`, "sgl")
  .option("--retention <r>", "visual tokens the large model keeps from layer K", decimal(0, 1))
  .option("--prune-layer <k>", "layer K at which the large model is pruned", integer(1, 1000))
  .option("--threshold <t>", "SEE exit threshold", decimal(0, 1))
  .option("--packs <dir>", "model packs directory", "model-packs")
  .parse()
  .opts<{
    seed: number;
    count: number;
    mode: string;
    retention?: number;
    pruneLayer?: number;
    threshold?: number;
    packs: string;
  }>();

if (!MODES.includes(opts.mode as Mode)) throw new Error(`--mode must be one of ${MODES.join(", ")}`);
// The same start-up as a worker in role `both` (serving defaults, env overrides), minus the HTTP server.
const workerConfig = loadConfig({
  ...process.env,
  STITCH_ROLE: "both",
  STITCH_PACKS_DIR: opts.packs,
  STITCH_REQUEST_TIMEOUT_MS: "600000",
  STITCH_LARGE_TIMEOUT_MS: "600000",
});
const services = await loadServices(
  workerConfig,
  createLogger({ level: "warn", write: (line) => process.stderr.write(`${line}\n`) }),
);
const deps = services.answer;
if (!deps) throw new Error("role both must load the small function's dependencies");

const records: EvalRecord[] = [];
for (let i = 0; i < opts.count; i++) {
  const item = generateItem(opts.seed, i);
  const qa = item.questions[0] as (typeof item.questions)[number];
  const request = AnswerRequestSchema.parse({
    request_id: `eval-${item.id}`,
    image: { base64: Buffer.from(encodePng(item.rgb, item.side)).toString("base64"), media_type: "image/png" },
    messages: askAboutImage(qa.question),
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
await services.close();

const config = {
  seed: opts.seed,
  count: opts.count,
  mode: opts.mode,
  retention: opts.retention ?? (opts.mode === "small" || opts.mode === "large" ? null : deps.defaults.retention),
  prune_layer: opts.pruneLayer ?? deps.defaults.pruneLayer,
  threshold: opts.threshold ?? null,
  packs: { small: deps.small.pack.version, large: deps.largePack.version },
};
console.log(JSON.stringify({ config, ...summarise(records, TIERS) }, null, 2));
