/**
 * Conformance of the TypeScript engine with the reference each pack's exporter recorded (fixture.json, from
 * torch for the embedded pair, from transformers in eager attention for exported families): the same prompt
 * ids from the chat template, greedy tokens, first-step logits and SGP attention sums within the fixture's
 * stated tolerance, and, where recorded, a pruned run (visual tokens removed from layer K, positions kept).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import ort from "onnxruntime-node";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import type { Conversation } from "../../shared/index.js";
import { DecoderRun, type PruneAt } from "./decoder-run.js";
import { generate } from "./generate.js";
import { normalisePlanar, patchify } from "./image-processor/patchify.js";
import { toPixelValues } from "./image-processor/pixel-values.js";
import { visionInputs } from "./image-processor/vision-inputs.js";
import { type LoadedModel, loadModel } from "./loaded-model.js";
import { readModelPack } from "./model-pack.js";
import { floatTensor, Meter } from "./onnx-sessions.js";
import { positionScheme } from "./positions/mrope.js";
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
  /** smart_resize packs: the processor's resized image (uint8), its grid, and the tower's host-side inputs. */
  resized_png_base64?: string;
  grid_thw?: [number, number, number];
  vision_position_ids?: number[][];
  window_index?: number[];
  window_segments?: number[];
  /** M-RoPE packs: transformers' get_rope_index, [3][T]. */
  position_ids?: number[][];
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
  join(FIXTURE_PACKS_DIR, "qwen25vl-tiny-small"),
  join(FIXTURE_PACKS_DIR, "qwen25vl-tiny-large"),
].filter((dir) => existsSync(join(dir, "manifest.json")));

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  return Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);
};

const rgbOf = async (png: string) => {
  const { data, info } = await sharp(Buffer.from(png, "base64"))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgb: new Uint8Array(data) };
};
const int64 = (values: ArrayLike<number>, dims: number[]) =>
  new ort.Tensor(
    "int64",
    BigInt64Array.from(Array.from(values), (v) => BigInt(v)),
    dims,
  );

/**
 * The visual embeddings of a case: the recorded processor output (tiles, or the resized image) through the
 * vision graph, or the scene through the whole processor. For smart_resize the host-side tower inputs the engine
 * computes are checked against transformers' on the way.
 */
async function visualEmbeds(model: LoadedModel, c: FixtureCase, meter: Meter): Promise<Float32Array> {
  if (c.scene) return (await model.vision.embed(sceneImage(c.scene.seed, c.scene.index), meter)).embeds;
  const recipe = model.pack.manifest.image;
  if (recipe.processor === "smart_resize") {
    const [t, h, w] = c.grid_thw ?? [0, 0, 0];
    const pixels = patchify(normalisePlanar(await rgbOf(c.resized_png_base64 ?? ""), recipe), recipe);
    const inputs = visionInputs({ t, h, w }, recipe);
    expect(Array.from(inputs.vision_position_ids.data)).toEqual(c.vision_position_ids?.flat());
    expect(Array.from(inputs.window_index.data)).toEqual(c.window_index);
    expect(Array.from(inputs.window_segments.data)).toEqual(c.window_segments);
    const out = await meter.run(model.sessions.vision, {
      pixel_values: floatTensor(pixels, [t * h * w, pixels.length / (t * h * w)]),
      vision_position_ids: int64(inputs.vision_position_ids.data, inputs.vision_position_ids.dims),
      window_index: int64(inputs.window_index.data, inputs.window_index.dims),
      window_segments: int64(inputs.window_segments.data, inputs.window_segments.dims),
    });
    return out.visual_embeds?.data as Float32Array;
  }
  const tiles = await Promise.all((c.tiles_png_base64 ?? []).map(async (png) => (await rgbOf(png)).rgb));
  const pixels = floatTensor(toPixelValues(tiles, recipe), [tiles.length, 3, recipe.tile.height, recipe.tile.width]);
  const out = await meter.run(model.sessions.vision, { pixel_values: pixels });
  return out.visual_embeds?.data as Float32Array;
}

/** The case's position scheme; for M-RoPE checked against transformers' get_rope_index. */
function positionsOf(model: LoadedModel, c: FixtureCase) {
  const grid = c.grid_thw && { t: c.grid_thw[0], h: c.grid_thw[1] / 2, w: c.grid_thw[2] / 2 };
  const scheme = positionScheme(model.dims.positions, c.input_ids.length, grid ? { span: c.visual_span, grid } : null);
  if (c.position_ids) expect(scheme.prompt([...c.input_ids.keys()]).data).toEqual(c.position_ids.flat());
  return scheme;
}

async function greedy(model: LoadedModel, embeds: Float32Array, c: FixtureCase, maxTokens: number, prune?: PruneAt) {
  const meter = new Meter();
  const positions = positionsOf(model, c);
  const firstRun = new DecoderRun(model, meter, c.visual_span, positions);
  const firstLogits = await firstRun.prefill(embeds, prune);
  const run = new DecoderRun(model, meter, c.visual_span, positions);
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
    if (!model) {
      model = await loadModel(await readModelPack(dir), { executionProviders: ["cpu"], threads: 1 }, 1 << 20);
      model.sessions.providers.finish(); // the engine does this after its warm-up: stop profiling, drop the files
    }
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
