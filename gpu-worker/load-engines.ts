/**
 * Start-up of a function's models, by role: `small` loads the small engine and
 * calls the large function over HTTP (it only needs the large pack's manifest,
 * to validate parameters and name the version); `large` loads the large engine;
 * `both` loads the two and escalates in-process. The pair, each model's weight
 * type against the execution provider and the weights' memory against
 * STITCH_MAX_MODEL_MB are checked before any session is created, and the serving
 * defaults (calibration file, then env) are fixed here once.
 */
import type { AnswerDeps } from "./answer-question.js";
import type { WorkerConfig } from "./config.js";
import { checkPruneLayer } from "./engine/check-pruning.js";
import type { ExitPolicy } from "./engine/decide-exit.js";
import { loadLargeEngine, loadSmallEngine } from "./engine/engine.js";
import { checkProviders, type ProviderReport } from "./engine/execution-providers.js";
import { checkPair, ModelPackError, packInfo, readPackManifest } from "./engine/model-pack.js";
import { checkMemoryBudget, checkWeightType, describeMemory, packMemory } from "./engine/pack-memory.js";
import { resolveServingDefaults } from "./engine/serving-defaults.js";
import { inProcessEscalation } from "./escalation/in-process.js";
import { httpEscalation } from "./escalation/over-http.js";
import type { Logger } from "./http/logger.js";
import type { VisionCacheStats } from "./http/metrics.js";
import type { PruneDefaults } from "./resolve-method.js";
import type { LargeDeps } from "./run-pruned-large.js";
import { reportToEdge } from "./shadow/report-to-edge.js";
import { type ShadowOutcome, ShadowRunner } from "./shadow/shadow-runner.js";

export interface LoadedServices {
  /** The small function's dependencies (roles small and both). */
  answer?: AnswerDeps;
  /** The large function's dependencies (role large). */
  large?: LargeDeps;
  visionCaches: () => Record<string, VisionCacheStats>;
  /** Which execution provider ran each graph of each loaded model, measured in the warm-up. */
  providers: Record<string, ProviderReport>;
  close(): Promise<void>;
}

/** Refuses a model that ran on a fallback provider, and logs what ran where (once, at start-up). */
function reportProviders(
  models: Record<string, { model: { sessions: { providers: { finish(): ProviderReport } } } }>,
  log: Logger,
) {
  const reports: Record<string, ProviderReport> = {};
  for (const [name, engine] of Object.entries(models)) {
    const report = engine.model.sessions.providers.finish();
    log.info("execution providers", {
      model: name,
      requested: report.requested,
      graphs: Object.fromEntries(report.graphs.map((g) => [g.graph, g.ran ? g.nodes : "not run in warm-up"])),
    });
    checkProviders(report, `${name} model`);
    reports[name] = report;
  }
  return reports;
}

/**
 * The models this function loads: each one's weight type against the preferred provider, its weights' memory per
 * graph (logged once), and all of it against the function's budget.
 */
async function checkModels(config: WorkerConfig, log: Logger, dirs: Record<string, string>): Promise<void> {
  const provider = config.executionProviders[0] ?? "cpu";
  const models = [];
  for (const [role, dir] of Object.entries(dirs)) {
    const manifest = await readPackManifest(dir);
    checkWeightType(dir, manifest, config.executionProviders);
    const memory = await packMemory(dir, manifest, provider);
    log.info("model weights", describeMemory(role, memory));
    models.push({ role, memory });
  }
  if (config.maxModelBytes !== undefined) checkMemoryBudget(models, config.maxModelBytes);
}

export interface LoadHooks {
  /** Counts each shadow escalation's outcome (the small function's metrics). */
  countShadow?: (outcome: ShadowOutcome) => void;
  /** An idle slot of this process's gate for a shadow run in process (role both): see ShadowRunnerDeps.slot. */
  shadowSlot?: (preempt: () => void) => () => void;
}

export async function loadServices(config: WorkerConfig, log: Logger, hooks: LoadHooks = {}): Promise<LoadedServices> {
  await checkModels(
    config,
    log,
    config.role === "both"
      ? { small: config.smallPackDir, large: config.largePackDir }
      : config.role === "small"
        ? { small: config.smallPackDir }
        : { large: config.largePackDir },
  );
  const engineOptions = {
    threads: config.threads,
    executionProviders: config.executionProviders,
    visionCacheBytes: config.visionCacheBytes,
    gpuClass: config.gpuClass,
  };
  const limits = {
    maxBytes: config.maxImageBytes,
    maxPixels: config.maxImagePixels,
    timeoutMs: config.decodeTimeoutMs,
  };

  if (config.role === "large") {
    const large = await loadLargeEngine({ ...engineOptions, packDir: config.largePackDir });
    log.info("large engine loaded", { pack: large.pack });
    const providers = reportProviders({ large }, log);
    return {
      large: { large, limits, detail: config.detail },
      visionCaches: () => ({ large: large.model.vision.cacheStats() }),
      providers,
      close: async () => {},
    };
  }

  // Refuse a mismatched pair before paying for any session.
  const smallManifest = await readPackManifest(config.smallPackDir);
  const largeManifest = await readPackManifest(config.largePackDir);
  checkPair(smallManifest, largeManifest);
  const defaults = await resolveServingDefaults(
    config.packsDir,
    { small: smallManifest.version, large: largeManifest.version },
    {
      exitThreshold: config.exit.threshold,
      exitRetention: config.exit.retention,
      exitRule: config.exit.rule,
      pruneLayer: config.defaultPruneLayer,
      pruneRetention: config.defaultRetention,
    },
    largeManifest.split_layers,
  );
  const exit: ExitPolicy = defaults.exit;
  const prune: PruneDefaults = { pruneLayer: defaults.prune.layer, retention: defaults.prune.retention };
  const largeInfo = packInfo(largeManifest);
  try {
    checkPruneLayer(prune.pruneLayer, largeInfo);
  } catch (err) {
    throw new ModelPackError(`default prune layer: ${(err as Error).message}`);
  }

  const small = await loadSmallEngine({ ...engineOptions, packDir: config.smallPackDir, exit });
  const large =
    config.role === "both"
      ? await loadLargeEngine({ ...engineOptions, packDir: config.largePackDir, partnerPackDir: config.smallPackDir })
      : undefined;
  const providers = reportProviders(large ? { small, large } : { small }, log);
  const escalation = large
    ? inProcessEscalation(large, { timeoutMs: config.largeTimeoutMs })
    : httpEscalation({
        url: config.largeUrl,
        secret: config.signingSecret,
        timeoutMs: config.largeTimeoutMs,
        // Requests give their slot back while the large function works, so more than maxConcurrency may wait on it.
        connections: 2 * (config.maxConcurrency + config.maxQueue),
      });
  log.info("engines loaded", {
    role: config.role,
    small: small.pack,
    large: largeInfo,
    exit,
    prune,
    detail: config.detail,
  });
  const { edgeUrl, rate, perMinute } = config.shadow;
  const shadow = edgeUrl
    ? new ShadowRunner({
        escalation,
        report: reportToEdge(edgeUrl, config.signingSecret),
        settings: { rate, perMinute, timeoutMs: config.largeTimeoutMs },
        count: hooks.countShadow,
        slot: hooks.shadowSlot,
      })
    : undefined;
  return {
    answer: {
      small,
      largePack: large?.pack ?? largeInfo,
      escalation,
      defaults: prune,
      detail: config.detail,
      limits,
      shadow,
      ...(defaults.agreement && { agreement: defaults.agreement }),
    },
    visionCaches: () => ({
      small: small.model.vision.cacheStats(),
      ...(large ? { large: large.model.vision.cacheStats() } : {}),
    }),
    providers,
    close: async () => {
      await shadow?.settled();
      await escalation.close();
    },
  };
}
