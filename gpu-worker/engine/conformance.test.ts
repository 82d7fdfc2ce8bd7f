/**
 * Conformance of the TypeScript engine with the reference each pack's exporter recorded (fixture.json, from
 * torch for the embedded pair, from transformers in eager attention for exported families): the same prompt
 * ids from the chat template, greedy tokens, first-step logits and SGP attention sums within the fixture's
 * stated tolerance, and, where recorded, a pruned run (visual tokens removed from layer K, positions kept).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import type { Conversation } from "../../shared/index.js";
import { DecoderRun, type PruneAt } from "./decoder-run.js";
import { generate } from "./generate.js";
import { toPixelValues } from "./image-processor/pixel-values.js";
import { type LoadedModel, loadModel } from "./loaded-model.js";
import { readModelPack } from "./model-pack.js";
import { floatTensor, Meter } from "./onnx-sessions.js";
import { FIXTURE_PACKS_DIR, PACKS_DIR, sceneImage } from "./testing.js";

interface Run {
  tokens: number[];
  first_logits: number[];
}
interface FixtureCase extends Run {
  name: string;
  scene?: { seed: number; index: number };
  /** The processor's tiles (uint8, before rescale), so the model is checked on exactly transformers' input. */
  tiles_png_base64?: string[];
  messages: Conversation;
  input_ids: number[];
  visual_span: { offset: number; length: number };
  attention_received: number[];
  pruned?: Run & { layer: number; keep: number[] };
}
interface Fixture {
  max_tokens: number;
  tolerance: { logits: number; attention: number };
  cases: FixtureCase[];
}

const PACKS = [
  join(PACKS_DIR, "stitch-scenes-small"),
  join(PACKS_DIR, "stitch-scenes-large"),
  join(FIXTURE_PACKS_DIR, "internvl3-tiny-small"),
  join(FIXTURE_PACKS_DIR, "internvl3-tiny-large"),
].filter((dir) => existsSync(join(dir, "manifest.json")));

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  return Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);
};

/** The visual embeddings of a case: the recorded tiles through the vision graph, or the scene through the processor. */
async function visualEmbeds(model: LoadedModel, c: FixtureCase, meter: Meter): Promise<Float32Array> {
  if (c.scene) return (await model.vision.embed(sceneImage(c.scene.seed, c.scene.index), meter)).embeds;
  const recipe = model.pack.manifest.image;
  if (recipe.processor === "smart_resize") throw new Error("smart_resize fixtures are not read yet");
  const tiles = await Promise.all(
    (c.tiles_png_base64 ?? []).map(async (png) => {
      const { data } = await sharp(Buffer.from(png, "base64"))
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      return new Uint8Array(data);
    }),
  );
  const pixels = floatTensor(toPixelValues(tiles, recipe), [tiles.length, 3, recipe.tile.height, recipe.tile.width]);
  const out = await meter.run(model.sessions.vision, { pixel_values: pixels });
  return out.visual_embeds?.data as Float32Array;
}

async function greedy(model: LoadedModel, embeds: Float32Array, c: FixtureCase, maxTokens: number, prune?: PruneAt) {
  const meter = new Meter();
  const firstRun = new DecoderRun(model, meter, c.visual_span);
  const firstLogits = await firstRun.prefill(embeds, prune);
  const run = new DecoderRun(model, meter, c.visual_span);
  const gen = await generate({
    run,
    embeds,
    promptLength: c.input_ids.length,
    maxTokens,
    stopIds: model.prompt.stopIds,
    decode: model.prompt.decode,
    prune,
  });
  const tokens = gen.finishReason === "stop" ? [...gen.tokens, model.prompt.stopId] : gen.tokens;
  return { firstLogits, tokens, received: run.received };
}

describe.each(PACKS)("conformance of %s with its recorded reference", (dir) => {
  const fixture = JSON.parse(readFileSync(join(dir, "fixture.json"), "utf8")) as Fixture;
  let model: LoadedModel | undefined;
  const load = async () => {
    model ??= await loadModel(await readModelPack(dir), { executionProviders: ["cpu"], threads: 1 }, 1 << 20);
    return model;
  };

  it.each(fixture.cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const m = await load();
    const meter = new Meter();
    const visual = await visualEmbeds(m, c, meter);
    const { hidden } = m.dims;
    expect(visual.length / hidden).toBe(c.visual_span.length);

    const prompt = m.prompt.build(c.messages, c.visual_span.length);
    expect(prompt.ids).toEqual(c.input_ids);
    expect(prompt.span).toEqual(c.visual_span);
    const embeds = await m.embedTokens(prompt.ids, meter);
    embeds.set(visual, prompt.span.offset * hidden);

    const full = await greedy(m, embeds, c, fixture.max_tokens);
    expect(maxAbsDiff(full.firstLogits, c.first_logits)).toBeLessThanOrEqual(fixture.tolerance.logits);
    expect(full.tokens).toEqual(c.tokens);
    expect(maxAbsDiff(full.received, c.attention_received)).toBeLessThanOrEqual(fixture.tolerance.attention);

    if (c.pruned) {
      const keep = c.pruned.keep;
      const pruned = await greedy(m, embeds, c, fixture.max_tokens, { layer: c.pruned.layer, choose: () => keep });
      expect(maxAbsDiff(pruned.firstLogits, c.pruned.first_logits)).toBeLessThanOrEqual(fixture.tolerance.logits);
      expect(pruned.tokens).toEqual(c.pruned.tokens);
    }
  });
});
