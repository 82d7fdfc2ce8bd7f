/**
 * Stitch's side of bench:peers, straight on the engine (no HTTP): the pair's packs of one weight type loaded once,
 * then the request's pieces timed per path (engine-timing.ts): the large model alone, the large model pruned at
 * its first split layer by the small model's ranking (SGP, SGL's escalation), and the small model (SGL's first
 * step). Every run encodes its image afresh (a new cache key) as llama-mtmd-cli does.
 */
import { readFileSync } from "node:fs";
import type { PruneAt } from "../gpu-worker/engine/decoder-run.js";
import { loadLargeEngine, loadSmallEngine } from "../gpu-worker/engine/engine.js";
import type { LoadedModel } from "../gpu-worker/engine/loaded-model.js";
import { topVisualTokens } from "../gpu-worker/engine/rank-visual-tokens.js";
import type { Conversation } from "../shared/index.js";
import { photoAt, type RequestTiming, timed, timeRequest } from "./engine-timing.js";

export interface StitchPair {
  large: LoadedModel;
  small?: LoadedModel;
  /** Load time (sessions + warm-up) and the RSS it added, per model. */
  loads: { role: "small" | "large"; ms: number; rssBytes: number }[];
}

export type Loaded = { model: LoadedModel; load: StitchPair["loads"][number] };

/** One model of the pair (the partner pack is read for the pair check only), timed with the RSS it added. */
export async function loadModel(
  role: "small" | "large",
  dir: string,
  partnerDir: string | undefined,
  threads: number,
): Promise<Loaded> {
  const before = process.memoryUsage().rss;
  const options = { packDir: dir, partnerPackDir: partnerDir, threads };
  const load = async (): Promise<{ model: LoadedModel }> =>
    role === "small" ? loadSmallEngine(options) : loadLargeEngine(options);
  const [engine, ms] = await timed(load);
  return { model: engine.model, load: { role, ms, rssBytes: process.memoryUsage().rss - before } };
}

export async function loadPair(dirs: { large: string; small?: string }, threads: number): Promise<StitchPair> {
  const small = dirs.small ? await loadModel("small", dirs.small, dirs.large, threads) : undefined;
  const large = await loadModel("large", dirs.large, dirs.small, threads);
  return {
    large: large.model,
    ...(small && { small: small.model }),
    loads: [...(small ? [small.load] : []), large.load],
  };
}

/** Frees a model's ONNX sessions. */
export async function releaseModel(model: LoadedModel): Promise<void> {
  const { vision, embed, segments } = model.sessions;
  await Promise.all([vision.release(), embed.release(), ...segments.map((s) => s.session.release())]);
}

/** Frees the pair's ONNX sessions (the next weight type loads its own). */
export async function releasePair(pair: StitchPair): Promise<void> {
  for (const model of [pair.large, pair.small]) if (model) await releaseModel(model);
}

/** Peak resident set of this process so far (VmHWM). */
export function peakRssBytes(): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0) * 1024;
}

let fresh = 0;

/** One request on `model` for the image file (already at its request size), `steps` decode steps, optionally pruned. */
export async function stitchRequest(
  model: LoadedModel,
  image: { path: string; width: number; height: number },
  messages: Conversation,
  steps: number,
  prune?: PruneAt,
): Promise<RequestTiming> {
  const decoded = await photoAt(image.path, image.width, image.height, `peers-${fresh++}-${Math.random()}`);
  return timeRequest(model, decoded, messages, steps, prune);
}

/** SGP at the large model's first split layer: keep the top `retention` of the small model's ranking. */
export function sgp(large: LoadedModel, ranking: Float32Array, retention: number): PruneAt {
  const keep = topVisualTokens(ranking, retention);
  return { layer: large.info.splitLayers[0] as number, choose: () => keep };
}
