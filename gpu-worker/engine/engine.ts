/**
 * The SGL engine: the small model with SGP ranking and SEE exit decision, and the
 * large model pruned at layer K. Loaders verify the packs, create sessions once,
 * and warm up before returning.
 */
import { InvalidRequestError, type Metering } from "../../shared/index.js";
import { decideExit, type ExitPolicy, needsReread } from "./decide-exit.js";
import { DecoderRun, type PruneAt } from "./decoder-run.js";
import { type Generation, generate } from "./generate.js";
import { type LoadedModel, loadModel } from "./loaded-model.js";
import { checkPair, readModelPack, readPackManifest } from "./model-pack.js";
import { Meter } from "./onnx-sessions.js";
import { topVisualTokens } from "./rank-visual-tokens.js";
import { scoreConsistency } from "./score-consistency.js";
import { FALLBACK_DEFAULTS } from "./serving-defaults.js";
import type {
  DecodedImage,
  LargeEngine,
  LargeRequest,
  LargeResult,
  OnToken,
  SmallEngine,
  SmallRequest,
  SmallResult,
} from "./types.js";

export { checkPair, readModelPack, readPackManifest } from "./model-pack.js";
export { resolveServingDefaults, type ServingOverrides } from "./serving-defaults.js";

export interface EngineOptions {
  packDir: string;
  /** The other pack of the pair; when given, a mismatched pair is refused at load. */
  partnerPackDir?: string;
  /** Intra-op threads per ONNX session (default 1, as gpu-worker/config.ts explains). */
  threads?: number;
  executionProviders?: string[];
  visionCacheBytes?: number;
  gpuClass?: string;
  exit?: ExitPolicy;
  /** Run SEE's re-read even under a rule that ignores it, so every rule's score is known (calibration, benchmarks). */
  scoreEveryRule?: boolean;
}

async function load(options: EngineOptions, role: "small" | "large"): Promise<LoadedModel> {
  const pack = await readModelPack(options.packDir);
  if (pack.manifest.role !== role)
    throw new Error(`${options.packDir} is a ${pack.manifest.role} pack, expected ${role}`);
  if (options.partnerPackDir) {
    // The pair rule needs only the partner's manifest; its graphs are checksummed where they are loaded.
    const partner = await readPackManifest(options.partnerPackDir);
    if (role === "small") checkPair(pack.manifest, partner);
    else checkPair(partner, pack.manifest);
  }
  const model = await loadModel(
    pack,
    { executionProviders: options.executionProviders ?? ["cpu"], threads: options.threads ?? 1 },
    options.visionCacheBytes ?? 64 * 1024 * 1024,
  );
  await warmUp(model);
  return model;
}

/** One throwaway pass so the first real request does not pay for lazy initialisation. */
async function warmUp(model: LoadedModel): Promise<void> {
  const { width, height } = model.info.imageSize;
  const blank: DecodedImage = { hash: "warm-up", width, height, rgb: new Uint8Array(width * height * 3).fill(235) };
  const meter = new Meter();
  const { embeds } = await model.vision.embed(blank, meter);
  await new DecoderRun(model, meter).prefill(embeds, model.prompt.warmupIds);
}

function metering(
  model: LoadedModel,
  meter: Meter,
  promptTokens: number,
  completion: number,
  kept: number,
  gpuClass: string,
): Metering {
  return {
    accelerator_ms: meter.acceleratorMs,
    flops: meter.flops,
    visual_tokens_total: model.numVisual,
    visual_tokens_kept: kept,
    prompt_tokens: promptTokens,
    completion_tokens: completion,
    gpu_class: gpuClass,
  };
}

interface Answered {
  gen: Generation;
  run: DecoderRun;
  meter: Meter;
  embeds: Float32Array;
  textIds: number[];
}

/** Prompt → visual embeddings (cached) → greedy generation, with optional pruning; the one loop both models share. */
async function answerWith(
  model: LoadedModel,
  req: { image: DecodedImage; question: string; maxTokens: number; signal?: AbortSignal; onToken?: OnToken },
  prune?: PruneAt,
): Promise<Answered> {
  const { textIds } = model.prompt.build(req.question);
  const meter = new Meter();
  const { embeds } = await model.vision.embed(req.image, meter);
  const run = new DecoderRun(model, meter);
  const gen = await generate({
    run,
    visual: embeds,
    textIds,
    numVisual: model.numVisual,
    vocab: model.dims.vocab,
    maxTokens: req.maxTokens,
    stopIds: model.prompt.stopIds,
    decode: model.prompt.decode,
    prune,
    onToken: req.onToken,
    signal: req.signal,
  });
  run.release();
  return { gen, run, meter, embeds, textIds };
}

export async function loadSmallEngine(options: EngineOptions): Promise<SmallEngine & { model: LoadedModel }> {
  const model = await load(options, "small");
  const policy = options.exit ?? FALLBACK_DEFAULTS.exit;
  const gpuClass = options.gpuClass ?? "cpu";
  return {
    model,
    pack: model.info,
    checkQuestion: (q) => void model.prompt.build(q),
    async runSmall(req: SmallRequest): Promise<SmallResult> {
      const { gen, run, meter, embeds, textIds } = await answerWith(model, req);
      const ranking = [...run.received];
      const reread = needsReread(policy.rule, options.scoreEveryRule)
        ? await scoreConsistency(model, meter, embeds, textIds, gen, topVisualTokens(ranking, policy.retention))
        : null;
      const { shouldExit, ...exit } = decideExit(gen.probabilities, reread, policy, req.exitThreshold);
      const prompt = model.numVisual + textIds.length;
      return {
        answer: gen.text,
        finishReason: gen.finishReason,
        ranking,
        exit,
        shouldExit,
        metering: metering(model, meter, prompt, gen.probabilities.length, model.numVisual, gpuClass),
      };
    },
  };
}

export async function loadLargeEngine(options: EngineOptions): Promise<LargeEngine & { model: LoadedModel }> {
  const model = await load(options, "large");
  const gpuClass = options.gpuClass ?? "cpu";
  return {
    model,
    pack: model.info,
    checkQuestion: (q) => void model.prompt.build(q),
    async runLarge(req: LargeRequest): Promise<LargeResult> {
      const { gen, run, meter, textIds } = await answerWith(model, req, pruning(model, req));
      const prompt = model.numVisual + textIds.length;
      return {
        answer: gen.text,
        finishReason: gen.finishReason,
        ranking: [...run.received],
        metering: metering(model, meter, prompt, gen.probabilities.length, run.visualKept, gpuClass),
      };
    },
  };
}

/** Validates the pruning parameters against the pack and returns the pruning rule of the mode. */
function pruning(model: LoadedModel, req: LargeRequest): PruneAt | undefined {
  if (req.mode === "large") return undefined;
  if (!model.info.splitLayers.includes(req.pruneLayer)) {
    throw new InvalidRequestError(
      `prune_layer must be one of ${model.info.splitLayers.join(", ")} for ${model.info.name}`,
      "invalid_prune_layer",
      "stitch.prune_layer",
    );
  }
  if (!(req.retention > 0 && req.retention <= 1)) {
    throw new InvalidRequestError("retention must be in (0, 1]", "invalid_retention", "stitch.retention");
  }
  if (req.mode === "fastv") {
    // FastV: the large model's own attention at layer K-1, from the last prompt token.
    return {
      layer: req.pruneLayer,
      choose: (last) => topVisualTokens(last ?? new Float32Array(model.numVisual), req.retention),
    };
  }
  if (!req.ranking || req.ranking.length !== model.numVisual || !req.ranking.every(Number.isFinite)) {
    throw new InvalidRequestError(
      `sgp needs the small model's ranking of all ${model.numVisual} visual tokens`,
      "invalid_ranking",
      "ranking",
    );
  }
  const keep = topVisualTokens(req.ranking, req.retention);
  return { layer: req.pruneLayer, choose: () => keep };
}
