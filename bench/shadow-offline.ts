/**
 * bench:shadow's ground truth, computed with the engines directly before any request is sent: for every item of the
 * stream, the small model's answer and SEE decision score and the answer the escalation gives (the large model
 * pruned by the small ranking at the served K and r). Items are scene questions of a given tier mix
 * (scene-generator), each a pure function of (seed, index, mix).
 */
import { loadLargeEngine, loadSmallEngine, readModelPack } from "../gpu-worker/engine/engine.js";
import { resolveServingDefaults } from "../gpu-worker/engine/serving-defaults.js";
import type { DecodedImage } from "../gpu-worker/engine/types.js";
import { DEFAULT_GENERATOR_OPTIONS, encodePng, generateItem } from "../scene-generator/index.js";
import type { Tier } from "../scene-generator/vocabulary.js";
import { askAboutImage } from "../shared/index.js";
import { sameAnswer } from "../shared/shadow/normalise-answer.js";

export type Mix = Record<Tier, number>;

export interface StreamItem {
  index: number;
  tier: Tier;
  question: string;
  /** The scene as a PNG, base64: what the client sends. */
  png: string;
  small: string;
  decision: number;
  large: string;
  /** Whether the escalation's answer equals the small one (normalised). */
  agree: boolean;
}

export interface Truth {
  items: StreamItem[];
  served: { threshold: number; rule: string; layer: number; retention: number };
}

export function parseMix(spec: string): Mix {
  const mix: Mix = { exists: 0, read: 0, spatial: 0, count: 0 };
  for (const part of spec.split(",")) {
    const [name, weight] = part.split("=");
    if (!(name && name in mix && Number(weight) >= 0)) throw new Error(`bad tier weight: ${part}`);
    mix[name as Tier] = Number(weight);
  }
  return mix;
}

/** The items [from, from + count) of `seed` under `mix`, answered by both models. */
export async function groundTruth(
  packsDir: string,
  parts: { seed: number; from: number; count: number; mix: Mix }[],
  onProgress: (done: number) => void,
): Promise<Truth> {
  const smallDir = `${packsDir}/stitch-scenes-small`;
  const largeDir = `${packsDir}/stitch-scenes-large`;
  const [smallPack, largePack] = await Promise.all([readModelPack(smallDir), readModelPack(largeDir)]);
  const served = await resolveServingDefaults(packsDir, {
    small: smallPack.manifest.version,
    large: largePack.manifest.version,
  });
  const engine = { threads: 1, visionCacheBytes: 1 };
  const small = await loadSmallEngine({ ...engine, packDir: smallDir, partnerPackDir: largeDir, exit: served.exit });
  const large = await loadLargeEngine({ ...engine, packDir: largeDir, partnerPackDir: smallDir });
  const items: StreamItem[] = [];
  for (const part of parts) {
    for (let index = part.from; index < part.from + part.count; index++) {
      const item = generateItem(part.seed, index, { ...DEFAULT_GENERATOR_OPTIONS, tierMix: part.mix });
      const qa = item.questions[0];
      if (!qa) throw new Error(`item ${item.id} has no question`);
      const image: DecodedImage = { hash: item.id, width: item.side, height: item.side, rgb: item.rgb };
      const base = { image, messages: askAboutImage(qa.question), maxTokens: 8 };
      const s = await small.runSmall(base);
      const l = await large.runLarge({
        ...base,
        mode: "sgp",
        ranking: s.ranking,
        pruneLayer: served.prune.layer,
        retention: served.prune.retention,
      });
      items.push({
        index,
        tier: qa.tier,
        question: qa.question,
        png: Buffer.from(encodePng(item.rgb, item.side)).toString("base64"),
        small: s.answer,
        decision: s.exit.decision,
        large: l.answer,
        agree: sameAnswer(s.answer, l.answer),
      });
      if (items.length % 100 === 0) onProgress(items.length);
    }
  }
  return {
    items,
    served: {
      threshold: served.exit.threshold,
      rule: served.exit.rule,
      layer: served.prune.layer,
      retention: served.prune.retention,
    },
  };
}
