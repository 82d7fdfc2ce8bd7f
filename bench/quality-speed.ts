/**
 * Prefill time of the large model, pruned against unpruned, measured side by side:
 * for each item and repeat, the unpruned prefill and every pruned one run back to
 * back in a rotating order, so that load from anything else on the machine falls
 * on all of them alike. The kept tokens are the small model's top ceil(r·N) (SGP).
 */

import { median } from "simple-statistics";
import { DecoderRun } from "../gpu-worker/engine/decoder-run.js";
import type { LoadedModel } from "../gpu-worker/engine/loaded-model.js";
import { Meter } from "../gpu-worker/engine/onnx-sessions.js";
import { topVisualTokens } from "../gpu-worker/engine/rank-visual-tokens.js";
import { sceneImage } from "../gpu-worker/engine/testing.js";
import { generateItem } from "../scene-generator/index.js";
import type { ItemRecord } from "./quality-run.js";

export interface PrefillTiming {
  layer: number;
  retention: number;
  /** Median prefill ms over items × repeats, unpruned and pruned. */
  unprunedMs: number;
  prunedMs: number;
  /** Median over items of (unpruned / pruned), each the median of its repeats. */
  speedup: number;
}

export async function measurePrefill(
  model: LoadedModel,
  seed: number,
  records: ItemRecord[],
  points: { layer: number; retention: number }[],
  repeats: number,
): Promise<PrefillTiming[]> {
  const configs = [undefined, ...points];
  // times[config][item] = one entry per repeat
  const times = configs.map(() => records.map((): number[] => []));
  for (const [i, rec] of records.entries()) {
    const qa = generateItem(seed, rec.index).questions[0];
    if (!qa) continue;
    const { textIds } = model.prompt.build(qa.question);
    const { embeds } = await model.vision.embed(sceneImage(seed, rec.index), new Meter());
    for (let r = 0; r < repeats; r++) {
      for (let k = 0; k < configs.length; k++) {
        const c = (k + i + r) % configs.length;
        const point = configs[c];
        const keep = point && topVisualTokens(rec.small.ranking, point.retention);
        const run = new DecoderRun(model, new Meter());
        const start = performance.now();
        await run.prefill(embeds, textIds, keep && point ? { layer: point.layer, choose: () => keep } : undefined);
        times[c]?.[i]?.push(performance.now() - start);
        run.release();
      }
    }
  }
  const perItem = times.map((byItem) => byItem.filter((t) => t.length > 0).map((t) => median(t)));
  const base = perItem[0] as number[];
  return points.map((p, j) => {
    const pruned = perItem[j + 1] as number[];
    return {
      ...p,
      unprunedMs: median(base),
      prunedMs: median(pruned),
      speedup: median(base.map((b, i) => b / (pruned[i] as number))),
    };
  });
}
