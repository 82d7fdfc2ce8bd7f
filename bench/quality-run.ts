/**
 * The engine runs behind `bench:quality`, cached per item: the small model once
 * (answer, SGP ranking, SEE scores), the large model unpruned once (answer and
 * its own all-layer ranking, the oracle), then every pruned configuration once.
 * Every later analysis (sgl at any threshold included) is computed from these
 * records without running a model again.
 */

import { requireConsistency } from "../gpu-worker/engine/decide-exit.js";
import { fixedVisualTokens } from "../gpu-worker/engine/image-processor/fixed/fixed-processor.js";
import { sceneImage } from "../gpu-worker/engine/testing.js";
import type { LargeEngine, LargeMode, LargeResult, SmallEngine } from "../gpu-worker/engine/types.js";
import { generateItem } from "../scene-generator/index.js";
import type { Tier } from "../scene-generator/vocabulary.js";
import { askAboutImage } from "../shared/index.js";
import { randomRanking } from "./stats.js";

/** How the large model is pruned: FastV, the small ranking (SGP), its own all-layer ranking (oracle), or at random. */
export const PRUNED_METHODS = ["fastv", "sgp", "oracle", "random"] as const;
export type PrunedMethod = (typeof PRUNED_METHODS)[number];

export interface PrunedConfig {
  method: PrunedMethod;
  layer: number;
  retention: number;
}

export const configKey = (c: PrunedConfig) => `${c.method}@${c.layer}@${c.retention}`;

export interface Outcome {
  answer: string;
  correct: boolean;
  flops: number;
  acceleratorMs: number;
  /** Wall time of the engine call (includes host work between model runs). */
  wallMs: number;
  kept: number;
}

export interface ItemRecord {
  index: number;
  tier: Tier;
  evidence: number[];
  small: Outcome & { ranking: number[]; confidence: number; consistency: number; decision: number };
  large: Outcome & { ranking: number[] };
  pruned: Record<string, Outcome>;
}

export interface RunPlan {
  seed: number;
  count: number;
  maxTokens: number;
  configs: PrunedConfig[];
  onProgress?: (done: number) => void;
}

export const isCorrect = (answer: string, expected: string) =>
  answer.trim().toLowerCase() === expected.trim().toLowerCase();

function outcome(
  res: { answer: string; metering: LargeResult["metering"] },
  expected: string,
  wallMs: number,
): Outcome {
  return {
    answer: res.answer,
    correct: isCorrect(res.answer, expected),
    flops: res.metering.flops,
    acceleratorMs: res.metering.accelerator_ms,
    wallMs,
    kept: res.metering.visual_tokens_kept,
  };
}

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await work();
  return [value, performance.now() - start];
}

/** Items run in chunks: the small model on the whole chunk, then the large one, so neither pays for the other's cold caches. */
const CHUNK = 20;

export async function runItems(small: SmallEngine, large: LargeEngine, plan: RunPlan): Promise<ItemRecord[]> {
  const records: ItemRecord[] = [];
  for (let first = 0; first < plan.count; first += CHUNK) {
    const items = Array.from({ length: Math.min(CHUNK, plan.count - first) }, (_, i) => question(plan, first + i));
    const smalls = [];
    for (const it of items) smalls.push(await timed(() => small.runSmall(it.base)));
    for (const [i, it] of items.entries()) {
      const [s, smallMs] = smalls[i] as (typeof smalls)[number];
      const firstLayer = large.pack.splitLayers[0] as number;
      const [l, largeMs] = await timed(() =>
        large.runLarge({ ...it.base, mode: "large", retention: 1, pruneLayer: firstLayer }),
      );
      const rankings: Record<PrunedMethod, number[] | undefined> = {
        fastv: undefined,
        sgp: s.ranking,
        oracle: l.ranking,
        random: randomRanking(fixedVisualTokens(small.pack.image), plan.seed, it.index),
      };
      const pruned: Record<string, Outcome> = {};
      for (const c of plan.configs) {
        const mode: LargeMode = c.method === "fastv" ? "fastv" : "sgp";
        const ranking = rankings[c.method];
        const [res, ms] = await timed(() =>
          large.runLarge({ ...it.base, mode, retention: c.retention, pruneLayer: c.layer, ranking }),
        );
        pruned[configKey(c)] = outcome(res, it.qa.answer, ms);
      }
      records.push({
        index: it.index,
        tier: it.qa.tier,
        evidence: it.qa.evidence,
        small: {
          ...outcome(s, it.qa.answer, smallMs),
          ranking: s.ranking,
          ...s.exit,
          consistency: requireConsistency(s.exit),
        },
        large: { ...outcome(l, it.qa.answer, largeMs), ranking: l.ranking },
        pruned,
      });
    }
    plan.onProgress?.(records.length);
  }
  return records;
}

function question(plan: RunPlan, index: number) {
  const item = generateItem(plan.seed, index);
  const qa = item.questions[0];
  if (!qa) throw new Error(`item ${item.id} has no question`);
  return {
    index,
    qa,
    base: { image: sceneImage(plan.seed, index), messages: askAboutImage(qa.question), maxTokens: plan.maxTokens },
  };
}
