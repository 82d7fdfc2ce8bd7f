/**
 * The SGL engine: the small model with SGP ranking and SEE exit decision, and the
 * large model pruned at layer K. Loaders verify the packs, create sessions once,
 * and warm up before returning.
 */
import { type Conversation, InvalidRequestError, type Metering } from "../../shared/index.js";
import type { VisualSpan } from "./build-prompt.js";
import { checkPruneLayer, checkRetention } from "./check-pruning.js";
import { decideExit, type ExitPolicy, needsReread } from "./decide-exit.js";
import { DecoderRun, type PruneAt } from "./decoder-run.js";
import { type Generation, generate } from "./generate.js";
import { type LoadedModel, loadModel } from "./loaded-model.js";
import { checkPair, readModelPack, readPackManifest } from "./model-pack.js";
import { Meter } from "./onnx-sessions.js";
import { type PositionScheme, positionScheme } from "./positions/mrope.js";
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
  model.sessions.providers.finish(); // profiling off from here; the counts say which provider ran each graph
  return model;
}

/** One throwaway pass so the first real request does not pay for lazy initialisation. */
async function warmUp(model: LoadedModel): Promise<void> {
  const { width, height } = model.info.processor.warmUpSize;
  const blank: DecodedImage = { hash: "warm-up", width, height, rgb: new Uint8Array(width * height * 3).fill(235) };
  const meter = new Meter();
  const { embeds, grid } = await model.vision.embed(blank, meter);
  const span = { offset: 0, length: embeds.length / model.dims.hidden };
  const positions = positionScheme(model.dims.positions, span.length, grid ? { span, grid } : null);
  const run = new DecoderRun(model, meter, span, positions);
  await run.prefill(embeds);
  // The decode_steps graph too, so that its first request is warm and the provider probe sees where it ran.
  if (run.stepsPerRun > 1) await run.decodeSteps(0, span.length);
}

function metering(meter: Meter, answered: Answered, kept: number, gpuClass: string): Metering {
  return {
    accelerator_ms: meter.acceleratorMs,
    flops: meter.flops,
    visual_tokens_total: answered.span.length,
    visual_tokens_kept: kept,
    visual_tokens_cached: answered.visualCached ? answered.span.length : 0,
    prompt_tokens: answered.promptLength,
    completion_tokens: answered.gen.probabilities.length,
    gpu_class: gpuClass,
  };
}

/** A generation and the prompt it read (SEE's re-read reads the same embeddings again). */
interface Answered extends PreparedPrompt {
  gen: Generation;
  run: DecoderRun;
  meter: Meter;
}

type AnswerInput = Pick<
  SmallRequest,
  "image" | "messages" | "maxTokens" | "imageDetail" | "signal" | "cachePartition" | "logprobs"
> & {
  onToken?: OnToken;
};

/**
 * Visual embeddings (cached) → prompt through the chat template with the visual span → greedy generation,
 * optionally pruned; the one loop both models share.
 */
async function answerWith(
  model: LoadedModel,
  req: AnswerInput,
  prune?: (visualTokens: number) => PruneAt | undefined,
): Promise<Answered> {
  const meter = new Meter();
  const prompt = await preparePrompt(model, req, meter);
  // A request cancelled (client gone, deadline, a preempted shadow) while its image was encoded stops before the prefill.
  req.signal?.throwIfAborted();
  checkContext(model, prompt.promptLength, req.maxTokens);
  const run = new DecoderRun(model, meter, prompt.span, prompt.positions);
  const gen = await generate({
    run,
    embeds: prompt.embeds,
    promptLength: prompt.promptLength,
    maxTokens: req.maxTokens,
    stopIds: model.prompt.stopIds,
    decode: model.prompt.decode,
    prune: prune?.(prompt.span.length),
    onToken: req.onToken,
    signal: req.signal,
    ...(req.logprobs !== undefined && { logprobs: { top: req.logprobs, describe: model.prompt.tokenText } }),
  });
  run.release();
  return { gen, run, meter, ...prompt };
}

export interface PreparedPrompt {
  /** [T × hidden]: text embeddings with the visual embeddings in the span. */
  embeds: Float32Array;
  span: VisualSpan;
  promptLength: number;
  positions: PositionScheme;
  /** Whether the vision cache served the visual embeddings (metered as cached tokens). */
  visualCached: boolean;
}

/** The decoder's input for one image and conversation: visual embeddings (cached) placed in the templated prompt. */
export async function preparePrompt(
  model: LoadedModel,
  req: Pick<SmallRequest, "image" | "messages" | "imageDetail" | "cachePartition">,
  meter: Meter,
): Promise<PreparedPrompt> {
  const { hidden } = model.dims;
  const {
    embeds: visual,
    grid,
    cached,
  } = await model.vision.embed(req.image, meter, req.imageDetail, req.cachePartition);
  const { ids, span } = model.prompt.build(req.messages, visual.length / hidden);
  const embeds = await model.embedTokens(ids, meter);
  embeds.set(visual, span.offset * hidden);
  const positions = positionScheme(model.dims.positions, ids.length, grid ? { span, grid } : null);
  return { embeds, span, promptLength: ids.length, positions, visualCached: cached };
}

function checkContext(model: LoadedModel, promptLength: number, maxTokens: number): void {
  const limit = model.pack.manifest.prompt.context_tokens;
  if (promptLength + maxTokens > limit) {
    throw new InvalidRequestError(
      `The prompt (${promptLength} tokens with the image) plus max_tokens ${maxTokens} exceeds this model's ${limit}`,
      "context_length_exceeded",
      "messages",
    );
  }
}

/** What both engines expose besides their run: the loaded model, its pack's facts, the prompt's own check. */
const surface = (model: LoadedModel) => ({
  model,
  pack: model.info,
  checkConversation: (messages: Conversation) => model.prompt.check(messages),
});

export async function loadSmallEngine(options: EngineOptions): Promise<SmallEngine & { model: LoadedModel }> {
  const model = await load(options, "small");
  const policy = options.exit ?? FALLBACK_DEFAULTS.exit;
  const gpuClass = options.gpuClass ?? "cpu";
  return {
    ...surface(model),
    async runSmall(req: SmallRequest): Promise<SmallResult> {
      const answered = await answerWith(model, req);
      const { gen, run, meter } = answered;
      const ranking = [...run.received];
      const reread = needsReread(policy.rule, options.scoreEveryRule)
        ? await scoreConsistency(model, meter, answered, gen, topVisualTokens(ranking, policy.retention))
        : null;
      const { shouldExit, ...exit } = decideExit(gen.probabilities, reread, policy, req.exitThreshold);
      return {
        answer: gen.text,
        finishReason: gen.finishReason,
        ranking,
        exit,
        shouldExit,
        metering: metering(meter, answered, answered.span.length, gpuClass),
        ...(gen.logprobs && { logprobs: gen.logprobs }),
      };
    },
  };
}

export async function loadLargeEngine(options: EngineOptions): Promise<LargeEngine & { model: LoadedModel }> {
  const model = await load(options, "large");
  const gpuClass = options.gpuClass ?? "cpu";
  return {
    ...surface(model),
    async runLarge(req: LargeRequest): Promise<LargeResult> {
      checkPruning(model, req);
      const answered = await answerWith(model, req, (n) => pruning(req, n));
      return {
        answer: answered.gen.text,
        finishReason: answered.gen.finishReason,
        ranking: [...answered.run.received],
        kept: answered.run.keptVisual,
        metering: metering(answered.meter, answered, answered.run.visualKept, gpuClass),
        ...(answered.gen.logprobs && { logprobs: answered.gen.logprobs }),
      };
    },
  };
}

/** Validates the pruning parameters against the pack, before any model runs. */
function checkPruning(model: LoadedModel, req: LargeRequest): void {
  if (req.mode === "large") return;
  checkPruneLayer(req.pruneLayer, model.info);
  checkRetention(req.retention);
}

/** The pruning rule of the mode, for an image of `visualTokens` tokens (known once the image is processed). */
function pruning(req: LargeRequest, visualTokens: number): PruneAt | undefined {
  if (req.mode === "large") return undefined;
  if (req.mode === "fastv") {
    // FastV: the large model's own attention at layer K-1, from the last prompt token.
    return {
      layer: req.pruneLayer,
      choose: (last) => topVisualTokens(last ?? new Float32Array(visualTokens), req.retention),
    };
  }
  if (!req.ranking || req.ranking.length !== visualTokens || !req.ranking.every(Number.isFinite)) {
    throw new InvalidRequestError(
      `sgp needs the small model's ranking of all ${visualTokens} visual tokens of this image`,
      "invalid_ranking",
      "ranking",
    );
  }
  const keep = topVisualTokens(req.ranking, req.retention);
  return { layer: req.pruneLayer, choose: () => keep };
}
