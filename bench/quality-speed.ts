/**
 * Time of the large model pruned by SGP against unpruned, measured side by side:
 * for each item and repeat, the unpruned run and every pruned one run back to back
 * in a rotating order, so that load from anything else on the machine falls on all
 * of them alike. Two measures: the prefill alone (the decoder pass over the prompt,
 * where pruning acts) and the whole engine request (vision, prefill, decoding).
 */
import { median } from "simple-statistics";
import { DecoderRun } from "../gpu-worker/engine/decoder-run.js";
import { preparePrompt } from "../gpu-worker/engine/engine.js";
import type { LoadedModel } from "../gpu-worker/engine/loaded-model.js";
import { Meter } from "../gpu-worker/engine/onnx-sessions.js";
import { topVisualTokens } from "../gpu-worker/engine/rank-visual-tokens.js";
import { sceneImage } from "../gpu-worker/engine/testing.js";
import type { LargeEngine } from "../gpu-worker/engine/types.js";
import { generateItem } from "../scene-generator/index.js";
import { askAboutImage } from "../shared/index.js";
import type { ItemRecord } from "./quality-run.js";

export interface SideBySide {
  /** Median ms over items (each item: the median of its repeats), unpruned and pruned. */
  unprunedMs: number;
  prunedMs: number;
  /** Median over items of unpruned / pruned. */
  speedup: number;
}

export interface SpeedTiming {
  layer: number;
  retention: number;
  prefill: SideBySide;
  request: SideBySide;
}

type Point = { layer: number; retention: number };

/** Runs `measure` for every item × repeat × (unpruned, ...points) in rotating order; per-item medians by config. */
async function rotate(
  records: ItemRecord[],
  points: Point[],
  repeats: number,
  measure: (rec: ItemRecord, point: Point | undefined) => Promise<number>,
): Promise<number[][]> {
  const configs = [undefined, ...points];
  const times = configs.map(() => records.map((): number[] => []));
  for (const [i, rec] of records.entries()) {
    for (let r = 0; r < repeats; r++) {
      for (let k = 0; k < configs.length; k++) {
        const c = (k + i + r) % configs.length;
        times[c]?.[i]?.push(await measure(rec, configs[c]));
      }
    }
  }
  return times.map((byItem) => byItem.map((t) => median(t)));
}

function compare(perConfig: number[][], j: number): SideBySide {
  const base = perConfig[0] as number[];
  const pruned = perConfig[j + 1] as number[];
  return {
    unprunedMs: median(base),
    prunedMs: median(pruned),
    speedup: median(base.map((b, i) => b / (pruned[i] as number))),
  };
}

export interface SpeedPlan {
  seed: number;
  maxTokens: number;
  points: Point[];
  repeats: number;
}

export async function measureSpeed(
  large: LargeEngine & { model: LoadedModel },
  records: ItemRecord[],
  plan: SpeedPlan,
): Promise<SpeedTiming[]> {
  const { seed, points, repeats } = plan;
  const model = large.model;
  const inputs = new Map(
    await Promise.all(
      records.map(async (rec) => {
        const messages = askAboutImage(generateItem(seed, rec.index).questions[0]?.question ?? "");
        const image = sceneImage(seed, rec.index);
        const prompt = await preparePrompt(model, { image, messages }, new Meter());
        return [rec.index, { messages, image, prompt }] as const;
      }),
    ),
  );
  const prefill = await rotate(records, points, repeats, async (rec, point) => {
    const input = inputs.get(rec.index);
    if (!input) throw new Error(`no input for item ${rec.index}`);
    const keep = point ? topVisualTokens(rec.small.ranking, point.retention) : [];
    const run = new DecoderRun(model, new Meter(), input.prompt.span);
    const start = performance.now();
    await run.prefill(input.prompt.embeds, point ? { layer: point.layer, choose: () => keep } : undefined);
    const ms = performance.now() - start;
    run.release();
    return ms;
  });
  const request = await rotate(records, points, repeats, async (rec, point) => {
    const input = inputs.get(rec.index);
    if (!input) throw new Error(`no input for item ${rec.index}`);
    const start = performance.now();
    await large.runLarge({
      image: input.image,
      messages: input.messages,
      maxTokens: plan.maxTokens,
      ...(point
        ? { mode: "sgp", retention: point.retention, pruneLayer: point.layer, ranking: rec.small.ranking }
        : { mode: "large", retention: 1, pruneLayer: model.info.splitLayers[0] as number }),
    });
    return performance.now() - start;
  });
  return points.map((p, j) => ({ ...p, prefill: compare(prefill, j), request: compare(request, j) }));
}
