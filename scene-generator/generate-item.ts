import { askQuestion, type QuestionAnswer } from "./ask-question.js";
import { type LayoutOptions, layoutScene, type Scene } from "./layout-scene.js";
import { seededRandom } from "./random.js";
import { renderScene } from "./render-scene.js";
import { TIERS, type Tier } from "./vocabulary.js";

export interface GeneratorOptions extends LayoutOptions {
  noise: number;
  /** Relative weight of each tier in the question mix. */
  tierMix: Record<Tier, number>;
  /** Question-answer turns asked of each image. */
  questionsPerImage: number;
}

export const DEFAULT_GENERATOR_OPTIONS: GeneratorOptions = {
  grid: 8,
  cellPx: 12,
  minObjects: 9,
  maxObjects: 14,
  clusterShare: 0.5,
  noise: 6,
  tierMix: { exists: 0.2, read: 0.25, spatial: 0.3, count: 0.25 },
  questionsPerImage: 1,
};

export interface SceneItem {
  /** `${seed}-${index}`: names the item and is enough to regenerate it. */
  id: string;
  scene: Scene;
  /** Packed RGB, (grid·cellPx)² × 3 bytes. */
  rgb: Uint8Array;
  side: number;
  questions: QuestionAnswer[];
}

/**
 * Item `index` of the stream `seed`: a pure function of its arguments, so any
 * item can be regenerated alone (item streams are independent of each other).
 */
export function generateItem(
  seed: number,
  index: number,
  options: GeneratorOptions = DEFAULT_GENERATOR_OPTIONS,
): SceneItem {
  const layoutRandom = seededRandom(seed, index * 3);
  const scene = layoutScene(layoutRandom, options);
  const rgb = renderScene(scene, seededRandom(seed, index * 3 + 1), options);
  const questionRandom = seededRandom(seed, index * 3 + 2);
  const questions = Array.from({ length: options.questionsPerImage }, () =>
    askQuestion(scene, pickTier(options.tierMix, questionRandom.next()), questionRandom),
  );
  return { id: `${seed}-${index}`, scene, rgb, side: options.grid * options.cellPx, questions };
}

/** Maps a uniform draw onto the configured tier weights. */
export function pickTier(mix: Record<Tier, number>, draw: number): Tier {
  const total = TIERS.reduce((sum, t) => sum + mix[t], 0);
  let acc = 0;
  for (const tier of TIERS) {
    acc += mix[tier] / total;
    if (draw < acc) return tier;
  }
  return TIERS[TIERS.length - 1] as Tier;
}
